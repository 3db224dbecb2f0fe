using Spectre.Console;
using Spectre.Console.Rendering;

namespace MLNet.Align.Cli;

/// <summary>Progress bars for long work: description, bar, percentage, items/s, elapsed, ETA. Falls back to plain
/// periodic lines when the console is redirected (CI logs).</summary>
public static class CliProgress
{
    /// <summary>The same bars as an <see cref="MLNet.Align.Embeddings.IProgressDisplay"/> for library calls.</summary>
    public static MLNet.Align.Embeddings.IProgressDisplay Display { get; } = new BarDisplay();

    /// <summary>Console summary lines for library calls that log.</summary>
    public static void Log(string line) => Console.WriteLine(line);

    private sealed class BarDisplay : MLNet.Align.Embeddings.IProgressDisplay
    {
        public T Run<T>(string title, long total, Func<IProgress<long>, T> work) => CliProgress.Run(title, total, work);
    }

    /// <summary>Runs <paramref name="work"/> with one progress task of <paramref name="total"/> items; the callback it
    /// receives reports the number of items done so far (absolute, not a delta).</summary>
    public static T Run<T>(string description, long total, Func<IProgress<long>, T> work)
    {
        if (Console.IsOutputRedirected || total <= 0)
            return work(new PlainProgress(description, total));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                     new ItemsPerSecondColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: total);
                result = work(new SyncProgress(v => task.Value = Math.Min(v, total)));
                task.Value = total;
            });
        return result;
    }

    /// <summary>Runs <paramref name="work"/> that returns nothing.</summary>
    public static void Run(string description, long total, Action<IProgress<long>> work)
        => Run<int>(description, total, p => { work(p); return 0; });

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }

    private sealed class PlainProgress(string description, long total) : IProgress<long>
    {
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private double _lastPrint = -10;
        public void Report(long value)
        {
            double s = _clock.Elapsed.TotalSeconds;
            if (s - _lastPrint < 5 && value < total) return;
            _lastPrint = s;
            double rate = value / Math.Max(s, 1e-9);
            string eta = total > 0 && rate > 0 ? TimeSpan.FromSeconds((total - value) / rate).ToString(@"hh\:mm\:ss") : "?";
            Console.WriteLine($"{description}: {value}/{total} ({rate:F1} items/s, ETA {eta})");
        }
    }

    private sealed class ItemsPerSecondColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
            => new Markup($"[grey]{(task.Speed ?? 0):F1} items/s[/]");
    }
}
