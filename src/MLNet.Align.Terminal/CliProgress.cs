using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace MLNet.Align.Terminal;

/// <summary>Progress bars for long work: description (with the current sub-step, when the work names one), bar,
/// percentage, a rate in the work's own unit (pairs/s, epochs/min), elapsed time and time left. Falls back to plain
/// periodic lines when the console is redirected (CI logs). Rates and times left are shown only once something is
/// done: never "0.0 items/s" or "ETA ?".</summary>
public static class CliProgress
{
    /// <summary>The unit of a bar whose total is a percentage (e.g. data preparation): no rate and no time left, since
    /// its stages run at unrelated speeds.</summary>
    public const string Percent = "%";

    /// <summary>The same bars as an <see cref="MLNet.Align.Embeddings.IProgressDisplay"/> for library calls.</summary>
    public static MLNet.Align.Embeddings.IProgressDisplay Display { get; } = new BarDisplay();

    /// <summary>Console summary lines for library calls that log.</summary>
    public static void Log(string line) => Console.WriteLine(line);

    /// <summary>Gives Spectre tables and rules a wide console when output is redirected (a log file), so tables do
    /// not wrap at Spectre's 80-column default and split encoder names or paths. Call once at startup.</summary>
    /// <param name="width">Columns to use when redirected (default 200).</param>
    public static void ConfigureConsole(int width = 200) => ConfigureConsole(AnsiConsole.Console, Console.IsOutputRedirected, width);

    /// <summary>Sets <paramref name="console"/>'s width to <paramref name="width"/> when <paramref name="redirected"/>.</summary>
    internal static void ConfigureConsole(IAnsiConsole console, bool redirected, int width = 200)
    {
        if (redirected) console.Profile.Width = width;
    }

    private sealed class BarDisplay : MLNet.Align.Embeddings.IProgressDisplay
    {
        public T Run<T>(string title, long total, Func<IProgress<long>, T> work) => CliProgress.Run(title, total, work);
    }

    /// <summary>What a running bar's work receives: <see cref="IProgress{T}.Report"/> takes the number of units done so
    /// far (absolute, not a delta); <see cref="Step"/> names the current sub-step ("apt-get install X (1/9)").</summary>
    public interface IStepProgress : IProgress<long>
    {
        /// <summary>Names the current sub-step: shown after the description on the live bar, printed as its own line
        /// when output is redirected (each distinct text once).</summary>
        void Step(string text);
    }

    /// <summary>Runs <paramref name="work"/> with one progress task of <paramref name="total"/> units; the callback it
    /// receives reports the number of units done so far (absolute, not a delta), and is an <see cref="IStepProgress"/>
    /// for work that names its sub-steps.</summary>
    /// <param name="description">What runs (the bar's label).</param>
    /// <param name="total">Planned units (&gt; 0 for a bar; 0 or less = plain lines only).</param>
    /// <param name="work">The work; receives the progress callback.</param>
    /// <param name="unit">Unit of the count, used in the rate ("pairs" -> "120 pairs/s", "epochs" -> "2.4 epochs/min");
    /// <see cref="Percent"/> for a 0-100 bar (no rate, no time left).</param>
    /// <param name="atMost">The total is an upper bound (training that may stop early): the time left reads "at most".</param>
    public static T Run<T>(string description, long total, Func<IProgress<long>, T> work, string unit = "items", bool atMost = false)
    {
        if (Console.IsOutputRedirected || total <= 0)
        {
            var plain = new PlainProgress(description, total, unit, atMost, Console.WriteLine);
            var value = work(plain);
            plain.Finish();
            return value;
        }
        T result = default!;
        var columns = new List<ProgressColumn> { new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn() };
        if (unit != Percent) columns.Add(new RateColumn(unit));
        columns.Add(new ElapsedTimeColumn());
        if (unit != Percent) columns.Add(new LeftColumn(atMost));
        columns.Add(new SpinnerColumn());
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(columns.ToArray())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: total);
                result = work(new LiveProgress(task, description, total));
                task.Value = total;
                task.Description = Markup.Escape(description);
            });
        return result;
    }

    /// <summary>Runs <paramref name="work"/> that returns nothing.</summary>
    public static void Run(string description, long total, Action<IProgress<long>> work, string unit = "items", bool atMost = false)
        => Run<int>(description, total, p => { work(p); return 0; }, unit, atMost);

    /// <summary>A rate in the unit that reads best: per second from 1/s, else per minute, else per hour; "" when nothing
    /// is done yet (a rate of 0 says nothing) or for <see cref="Percent"/> bars.</summary>
    /// <param name="perSecond">Units per second.</param>
    /// <param name="unit">Unit name ("pairs", "epochs").</param>
    public static string FormatRate(double perSecond, string unit)
    {
        if (unit == Percent || !(perSecond > 0) || double.IsInfinity(perSecond)) return "";
        var inv = CultureInfo.InvariantCulture;
        string F(double v) => v >= 100 ? v.ToString("F0", inv) : v.ToString("F1", inv);
        if (perSecond >= 1) return $"{F(perSecond)} {unit}/s";
        if (perSecond * 60 >= 1) return $"{F(perSecond * 60)} {unit}/min";
        return $"{F(perSecond * 3600)} {unit}/h";
    }

    /// <summary>Time left as "00:01:10 left" (or "at most 00:01:10 left"); "" when unknown (nothing done yet).</summary>
    public static string FormatLeft(TimeSpan? left, bool atMost)
        => left is { } t && t >= TimeSpan.Zero ? $"{(atMost ? "at most " : "")}{Clock(t)} left" : "";

    /// <summary>One plain progress line (redirected output): "Training seed 0: 3 of at most 20 epochs (2.4 epochs/min,
    /// at most 00:07:05 left)"; a <see cref="Percent"/> bar reads "Preparing data: 40% (00:01:10 elapsed)".</summary>
    /// <param name="description">The bar's label.</param>
    /// <param name="done">Units done.</param>
    /// <param name="total">Planned units (0 or less = unknown).</param>
    /// <param name="seconds">Seconds since the start.</param>
    /// <param name="unit">Unit name, or <see cref="Percent"/>.</param>
    /// <param name="atMost">The total is an upper bound.</param>
    public static string PlainLine(string description, long done, long total, double seconds, string unit, bool atMost)
    {
        var elapsed = TimeSpan.FromSeconds(Math.Max(0, Math.Round(seconds)));
        if (unit == Percent) return $"{description}: {done}% ({Clock(elapsed)} elapsed)";
        double rate = seconds > 0 ? done / seconds : 0;
        TimeSpan? left = total > 0 && done > 0 && rate > 0 ? TimeSpan.FromSeconds(Math.Round((total - done) / rate)) : null;
        var details = new[] { FormatRate(rate, unit), FormatLeft(left, atMost) }.Where(s => s.Length > 0).ToList();
        string count = total <= 0 ? $"{done} {unit}" : atMost ? $"{done} of at most {total} {unit}" : $"{done}/{total} {unit}";
        return $"{description}: {count}" + (details.Count > 0 ? $" ({string.Join(", ", details)})" : $" ({Clock(elapsed)} elapsed)");
    }

    private static string Clock(TimeSpan t) => t.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture);

    private sealed class LiveProgress(ProgressTask task, string description, long total) : IStepProgress
    {
        public void Report(long value) => task.Value = Math.Min(value, total);
        public void Step(string text) => task.Description = Markup.Escape($"{description}: {text}");
    }

    /// <summary>Redirected output: a line at most every 5 s (and at the end), and each new sub-step at once.</summary>
    internal sealed class PlainProgress(string description, long total, string unit, bool atMost, Action<string> write) : IStepProgress
    {
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private double _lastPrint = -10;
        private string? _lastStep;
        private long _last = -1;
        public void Report(long value)
        {
            double s = _clock.Elapsed.TotalSeconds;
            if ((s - _lastPrint < 5 && value < total) || value == _last) return;
            _lastPrint = s; _last = value;
            write(PlainLine(description, value, total, s, unit, atMost));
        }

        /// <summary>The closing line of a bar whose work ended before its last report (a percentage bar, or training
        /// that stopped early): the units actually done are unknown here, so only a percentage bar reads 100%.</summary>
        public void Finish()
        {
            if (unit == Percent && _last < total) write(PlainLine(description, total, total, _clock.Elapsed.TotalSeconds, unit, atMost));
        }

        public void Step(string text)
        {
            if (text == _lastStep) return;
            _lastStep = text;
            write($"{description}: {text}");
        }
    }

    private sealed class RateColumn(string unit) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
            => new Markup($"[grey]{Markup.Escape(FormatRate(task.Speed ?? 0, unit))}[/]");
    }

    private sealed class LeftColumn(bool atMost) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
            => new Markup($"[grey]{Markup.Escape(task.Value > 0 && !task.IsFinished ? FormatLeft(task.RemainingTime, atMost) : "")}[/]");
    }
}
