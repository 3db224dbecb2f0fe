using System.CommandLine;
using System.Diagnostics;
using MLNet.Align.Demo.Data;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>`mlnet-align data prepare`: installs and prepares the real data (pairs, splits, proxy, labelled sets).</summary>
public sealed class DataCommand : ICliCommand
{
    /// <inheritdoc />
    public Command Build()
    {
        var data = new Command("data", "Prepare the real data sets (docs/data.md) by the project's own code.");
        var prepare = new Command("prepare", "Install missing sources, build pairs TSVs (train / held-out / proxy) and export the labelled test sets as ImageFolders.");
        var outOpt = new Option<string>("--out") { Description = "Data folder to create or update.", Required = true };
        var quick = new Option<bool>("--quick") { Description = "Small deterministic subset (200 images per source, 1,000 items per labelled set)." };
        var sources = new Option<string>("--sources") { Description = $"Pair sources, comma-separated, each optionally name:fraction (e.g. tuxpaint,emoji,openclipart:0.3). Known: {string.Join(", ", SourceSelection.KnownSources)}; default {SourceSelection.DefaultList}.", DefaultValueFactory = _ => SourceSelection.DefaultList };
        var noInstall = new Option<bool>("--no-install") { Description = "Do not run apt-get/npm; fail with the commands to run when something is missing." };
        var noLabelled = new Option<bool>("--no-labelled") { Description = "Skip the Fashion-MNIST / MNIST test exports." };
        var labelledCount = new Option<int?>("--labelled-count") { Description = "Items per labelled set (default 10,000; quick 1,000)." };
        var heldOut = new Option<double>("--heldout-fraction") { Description = "Fraction of images held out for retrieval.", DefaultValueFactory = _ => 0.10 };
        var proxyFraction = new Option<double>("--proxy-fraction") { Description = "Fraction of Tux Paint / emoji images held out as the zero-shot proxy set.", DefaultValueFactory = _ => 0.10 };
        var copy = new Option<bool>("--copy-images") { Description = "Copy images instead of symbolic links to the installed files." };
        var fileNames = new Option<bool>("--oc-filename-fallback") { Description = "Caption OpenClipart images whose title is boilerplate by their file name instead of dropping them." };
        foreach (var o in new Option[] { outOpt, quick, sources, noInstall, noLabelled, labelledCount, heldOut, proxyFraction, copy, fileNames })
            prepare.Options.Add(o);
        // CliErrors: a bad --sources value or a malformed source file (e.g. a truncated .rcc) is one error line.
        prepare.SetAction(parse => CliErrors.Run(() =>
        {
            var options = new DataPreparerOptions
            {
                OutputDirectory = parse.GetValue(outOpt)!,
                Quick = parse.GetValue(quick),
                Sources = SourceSelection.ParseList(parse.GetValue(sources)!),
                Install = !parse.GetValue(noInstall),
                IncludeLabelled = !parse.GetValue(noLabelled),
                LabelledCount = parse.GetValue(labelledCount),
                HeldOutFraction = parse.GetValue(heldOut),
                ProxyFraction = parse.GetValue(proxyFraction),
                CopyImages = parse.GetValue(copy),
                Captions = new CaptionCleaningOptions { FileNameFallback = parse.GetValue(fileNames) },
            };
            try
            {
                var result = DataPreparer.Prepare(options, new ConsoleProgress());
                Print(result);
                return 0;
            }
            catch (DataPreparationException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }
        }));
        data.Subcommands.Add(prepare);
        return data;
    }

    private static void Print(DataPreparationResult r)
    {
        Console.WriteLine($"Data folder: {r.OutputDirectory} ({(r.Quick ? "quick subset" : "full")}, {r.Seconds:F1} s, {r.DiskBytes / 1048576.0:F1} MiB excluding npm/)");
        if (r.Installed.Count > 0) Console.WriteLine($"Installed: {string.Join(", ", r.Installed)}");
        if (r.SkippedSteps.Count > 0) Console.WriteLine($"Up to date, skipped: {string.Join(", ", r.SkippedSteps)}");
        Console.WriteLine($"{"source",-12} {"fraction",8} {"candidates",10} {"pairs",7} {"train",7} {"heldout",7} {"proxy",6}  dropped");
        foreach (var s in r.Sources)
            Console.WriteLine($"{s.Name,-12} {s.Fraction,8:0.##} {s.Candidates,10} {s.Pairs,7} {s.Train,7} {s.HeldOut,7} {s.Proxy,6}  "
                + (s.Dropped.Count == 0 ? "-" : string.Join("; ", s.Dropped.Select(d => $"{d.Value} {d.Key}"))));
        Console.WriteLine($"{"total",-12} {"",8} {r.Sources.Sum(s => s.Candidates),10} {r.TotalPairs,7} {r.Sources.Sum(s => s.Train),7} {r.Sources.Sum(s => s.HeldOut),7} {r.Sources.Sum(s => s.Proxy),6}");
        foreach (var u in r.UndecodableImages) Console.WriteLine($"undecodable: {u}");
        Console.WriteLine($"Pairs:    {r.PairsTsv}");
        Console.WriteLine($"Train:    {r.TrainTsv}");
        Console.WriteLine($"Held-out: {r.HeldOutTsv}");
        Console.WriteLine($"Proxy:    {r.ProxyTsv}");
        foreach (var p in r.Proxy) Console.WriteLine($"Proxy task {p.Name}: {p.Count} images, {p.ClassNames.Count} classes, ImageFolder {p.Folder}");
        foreach (var l in r.Labelled) Console.WriteLine($"Labelled {l.Name}: {l.Count} images, {l.ClassNames.Count} classes, ImageFolder {l.Folder}");
        Console.WriteLine($"Manifest: {Path.Combine(r.OutputDirectory, DataPreparer.ManifestFileName)}");
    }

    /// <summary>Prints message lines, and stage counts at most every 5 s.</summary>
    private sealed class ConsoleProgress : IProgress<DataPreparationProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private double _last = -10;
        public void Report(DataPreparationProgress value)
        {
            lock (this)
            {
                if (value.Message is not null) { Console.WriteLine($"[{value.Stage}] {value.Message}"); return; }
                if (_clock.Elapsed.TotalSeconds - _last < 5) return;
                _last = _clock.Elapsed.TotalSeconds;
                Console.WriteLine($"[{value.Stage}] {value.Done}/{value.Total}");
            }
        }
    }
}
