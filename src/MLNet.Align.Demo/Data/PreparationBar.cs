using MLNet.Align.Terminal;
namespace MLNet.Align.Demo.Data;

/// <summary>Maps <see cref="DataPreparer"/>'s stage reports onto one 0-100 bar, so the demo's "Preparing data" bar
/// moves while it works: each stage owns a fixed share (install, exports of the labelled sets, reading the sources,
/// checking images, linking images), filled by the stage's own done/total. The bar never moves backwards. Each
/// stage, and each message (an install sub-step such as "apt-get install: unpacking openclipart-png (3/9)"), is
/// named on the bar through <see cref="CliProgress.IStepProgress.Step"/> when the bar supports it.
/// Synchronous: <see cref="Progress{T}"/> would post reports to the thread pool, out of order.</summary>
internal sealed class PreparationBar(IProgress<long> bar) : IProgress<DataPreparationProgress>
{
    private static readonly (string Prefix, double From, double To)[] Stages =
    [
        ("install", 0, 5), ("export", 5, 40), ("pairs", 40, 55), ("check images", 55, 90), ("link images", 90, 100),
    ];
    private readonly HashSet<string> _exports = [];
    private readonly CliProgress.IStepProgress? _steps = bar as CliProgress.IStepProgress;
    private double _value;
    private string? _stage;

    /// <summary>What the bar says while a stage without its own message runs.</summary>
    internal static string StageStep(DataPreparationProgress value) => value.Stage switch
    {
        var s when s.StartsWith("export ", StringComparison.Ordinal) => $"exporting {s["export ".Length..]} as PNGs" + Count(value),
        "check images" => "checking that every image decodes (and dropping duplicates)" + Count(value),
        "link images" => "linking images into the data folder" + Count(value),
        var s => s + Count(value),
    };

    private static string Count(DataPreparationProgress v) => v.Total > 0 ? $" ({v.Total:N0} images)" : "";

    public void Report(DataPreparationProgress value)
    {
        lock (this)
        {
            if (value.Message is not null) _steps?.Step(value.Message);
            else if (value.Stage != _stage) _steps?.Step(StageStep(value));
            _stage = value.Stage;
            foreach (var (prefix, from, to) in Stages)
            {
                if (!value.Stage.StartsWith(prefix, StringComparison.Ordinal)) continue;
                double lo = from, hi = to;
                if (prefix == "export")
                {
                    // Two labelled sets (Fashion-MNIST, MNIST) share the export band in halves.
                    _exports.Add(value.Stage);
                    int k = Math.Min(_exports.Count, 2);
                    lo = from + (to - from) * (k - 1) / 2; hi = from + (to - from) * k / 2;
                }
                double fraction = value.Total > 0 ? Math.Clamp((double)value.Done / value.Total, 0, 1) : 0;
                _value = Math.Max(_value, lo + (hi - lo) * fraction);
                bar.Report((long)_value);
                return;
            }
        }
    }
}
