using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Cli.Reports;
using MLNet.Align.Similarity;
using Spectre.Console;

namespace MLNet.Align.Cli.Commands;

/// <summary>
/// <c>mlnet-align select</c>: stage 1. Ranks every (image candidate, text candidate) pair on a probe pairs file by
/// linear CKA, RBF CKA and mutual k-NN with bootstrap intervals and a shuffled-pairs control; writes selection.json,
/// selection.md and heatmaps. <c>--shard i/N</c> encodes one partition of the probe images into a features file;
/// <c>select merge</c> combines the partitions and ranks (byte-identical to a one-process run).
/// </summary>
public sealed class SelectCommand : ICliCommand
{
    /// <summary>Default image candidates: the packaged ResNet-18's last three stages.</summary>
    public const string DefaultImageCandidates = "resnet18.layer2,resnet18.layer3,resnet18.layer4";
    /// <summary>Default text candidates: the two packaged sentence encoders.</summary>
    public const string DefaultTextCandidates = "minilm,arctic-xs";

    /// <inheritdoc/>
    public Command Build()
    {
        var pairs = new Option<FileInfo>("--pairs") { Description = "Probe pairs file (.csv/.tsv with image and caption columns; several captions per image are averaged).", Required = true };
        var images = new Option<string>("--image-encoders") { Description = "Comma-separated image candidates: resnet18 (pooled) | resnet18.layer2 | resnet18.layer3 | resnet18.layer4.", DefaultValueFactory = _ => DefaultImageCandidates };
        var texts = new Option<string>("--text-encoders") { Description = "Comma-separated text candidates: minilm (all-MiniLM-L6-v2) | arctic-xs (snowflake-arctic-embed-xs).", DefaultValueFactory = _ => DefaultTextCandidates };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder.", DefaultValueFactory = _ => new DirectoryInfo("select-out") };
        var shard = new Option<string?>("--shard") { Description = "Encode only partition i/N of the probe images (by image key hash) into OUT/features-i-of-N.bin; rank with 'select merge'." };
        var common = CommonOptions();
        var cmd = new Command("select", "Stage 1: rank image x text encoder (and layer) candidates by CKA / mutual k-NN, with bootstrap intervals and a shuffled control.");
        foreach (var o in new Option[] { pairs, images, texts, output, shard }.Concat(common.All)) cmd.Options.Add(o);
        cmd.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() => Run(parse.GetValue(pairs)!.FullName, parse.GetValue(images)!, parse.GetValue(texts)!,
            parse.GetValue(output)!.FullName, parse.GetValue(shard), common.Read(parse), ct))));

        var mergeOut = new Option<DirectoryInfo>("--out") { Description = "Output folder of the ranking.", Required = true };
        var parts = new Argument<FileInfo[]>("features") { Description = "The features-i-of-N.bin files of all partitions.", Arity = ArgumentArity.OneOrMore };
        var mergeCommon = CommonOptions();
        var merge = new Command("merge", "Combine the features of select --shard 0/N .. N-1/N and rank (same bytes as a one-process run).");
        merge.Options.Add(mergeOut);
        foreach (var o in mergeCommon.All) merge.Options.Add(o);
        merge.Arguments.Add(parts);
        merge.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() => Merge(parse.GetValue(parts)!.Select(f => f.FullName).ToList(),
            parse.GetValue(mergeOut)!.FullName, mergeCommon.Read(parse)))));
        cmd.Subcommands.Add(merge);
        return cmd;
    }

    private sealed record Common(Option<int> Bootstrap, Option<int> Seed, Option<double> Sigma, Option<bool> Unbiased, Option<int> Knn, Option<string> Metric)
    {
        public Option[] All => [Bootstrap, Seed, Sigma, Unbiased, Knn, Metric];
        public EncoderSelectionOptions Read(ParseResult p) => new()
        {
            Bootstrap = p.GetValue(Bootstrap), Seed = p.GetValue(Seed), SigmaFraction = p.GetValue(Sigma), UnbiasedHsic = p.GetValue(Unbiased),
            KnnK = p.GetValue(Knn), Metric = ParseMetric(p.GetValue(Metric)!),
        };
    }

    private static Common CommonOptions() => new(
        new Option<int>("--bootstrap") { Description = "Bootstrap resamples for the confidence intervals (0 = none).", DefaultValueFactory = _ => 200 },
        new Option<int>("--seed") { Description = "Seed of the resamples and of the shuffled control.", DefaultValueFactory = _ => 0 },
        new Option<double>("--sigma") { Description = "RBF bandwidth as a fraction of the median pairwise distance.", DefaultValueFactory = _ => 1.0 },
        new Option<bool>("--unbiased") { Description = "Unbiased HSIC estimator (linear and RBF CKA)." },
        new Option<int>("--knn") { Description = "k of mutual k-NN.", DefaultValueFactory = _ => 10 },
        new Option<string>("--metric") { Description = "Ordering metric: linear | rbf | mknn.", DefaultValueFactory = _ => "linear" });

    private static PairMetric ParseMetric(string m) => m.ToLowerInvariant() switch
    {
        "linear" or "linear-cka" or "cka" => PairMetric.LinearCka,
        "rbf" or "rbf-cka" or "kernel" => PairMetric.KernelCka,
        "mknn" or "mutual-knn" or "knn" => PairMetric.MutualKnn,
        _ => throw new ArgumentException($"--metric must be linear, rbf or mknn, got '{m}'."),
    };

    /// <summary>Runs <c>select</c> (one process, or one partition with <paramref name="shard"/>).</summary>
    public static int Run(string pairsPath, string imageList, string textList, string outDir, string? shard, EncoderSelectionOptions options, CancellationToken ct = default)
    {
        Rank(pairsPath, imageList, textList, outDir, shard, options, ct);
        return 0;
    }

    /// <summary>Runs <c>select</c> and returns the ranking (null for a <paramref name="shard"/> run, which only writes
    /// its features file). The demo calls this over its own probe pairs.</summary>
    public static EncoderSelectionReport? Rank(string pairsPath, string imageList, string textList, string outDir, string? shard, EncoderSelectionOptions options, CancellationToken ct = default)
    {
        options.Validate(); // before any encoding: a bad --bootstrap or --sigma fails at once
        var partition = shard is null ? null : ShardPartition.Parse(shard);
        var pairs = PairsFile.Read(pairsPath);
        var imageNames = Split(imageList, "--image-encoders");
        var textNames = Split(textList, "--text-encoders");
        var layers = new List<ImageLayer>();
        bool pooledResNet = false;
        foreach (var name in imageNames)
        {
            var layer = ImageLayerCandidates.ResNet18Stages.FirstOrDefault(l => l.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
            if (layer is not null) layers.Add(layer);
            else if (name.Equals("resnet18", StringComparison.OrdinalIgnoreCase)) pooledResNet = true;
            else throw new ArgumentException($"--image-encoders: unknown candidate '{name}'; known: resnet18, {string.Join(", ", ImageLayerCandidates.ResNet18Stages.Select(l => l.Name))}.");
        }
        using var layerEncoder = layers.Count > 0 ? ImageLayerCandidates.ResNet18(1, layers) : null;
        using var resnet = pooledResNet ? PackagedEncoders.ResNet18(1) : null;
        var imageCandidates = resnet is null ? new List<ImageEncoderCandidate>() : [new ImageEncoderCandidate("resnet18", resnet)];
        var textEncoders = new List<ITextEncoder>();
        try
        {
            var textCandidates = new List<TextEncoderCandidate>();
            foreach (var name in textNames)
            {
                ITextEncoder enc = name.ToLowerInvariant() switch
                {
                    "minilm" or "all-minilm-l6-v2" => PackagedEncoders.MiniLM(),
                    "arctic-xs" or "arcticxs" or "snowflake-arctic-embed-xs" => PackagedEncoders.ArcticXs(),
                    _ => throw new ArgumentException($"--text-encoders: unknown candidate '{name}'; known: minilm, arctic-xs."),
                };
                textEncoders.Add(enc);
                textCandidates.Add(new TextEncoderCandidate(enc.Identity.Name, enc));
            }
            int items = Enumerable.Range(0, pairs.Images.Count).Count(id => partition is null || partition.Contains(SelectionFeatures.ItemKey(pairs, id)));
            Console.WriteLine($"Probe: {pairs.Path}: {pairs.Rows.Count} pairs, {pairs.Images.Count} images{(partition is null ? "" : $", {items} in partition {partition}")}");
            Console.WriteLine($"Candidates: image [{string.Join(", ", imageNames)}] x text [{string.Join(", ", textCandidates.Select(t => t.Name))}]");
            using var outLock = CliLocks.Folder(outDir);
            var features = CliProgress.Run("Encoding probe items", items, p =>
                SelectionFeatures.Encode(pairs, layerEncoder, imageCandidates, textCandidates, partition, new Progress<int>(v => p.Report(v)), ct));
            if (partition is not null)
            {
                string file = Path.Combine(outDir, FeaturesFileName(partition));
                features.Save(file);
                Console.WriteLine($"Features of partition {partition} ({features.Keys.Count} items) -> {file}; combine all partitions with 'select merge'.");
                return null;
            }
            return Report(features, outDir, options);
        }
        finally
        {
            foreach (var t in textEncoders) t.Dispose();
        }
    }

    /// <summary>File name of a partition's features.</summary>
    public static string FeaturesFileName(ShardPartition p) => $"features-{p.Index}-of-{p.Count}.bin";

    /// <summary>Runs <c>select merge</c>.</summary>
    public static int Merge(IReadOnlyList<string> parts, string outDir, EncoderSelectionOptions options)
    {
        options.Validate();
        using var outLock = CliLocks.Folder(outDir);
        var merged = SelectionFeatures.Merge(parts.Select(SelectionFeatures.Load).ToList());
        Console.WriteLine($"Merged {parts.Count} partitions: {merged.Keys.Count} probe items.");
        Report(merged, outDir, options);
        return 0;
    }

    private static EncoderSelectionReport Report(SelectionFeatures features, string outDir, EncoderSelectionOptions options)
    {
        int pairCount = features.Images.Count * features.Texts.Count;
        var report = CliProgress.Run($"Scoring {pairCount} pairs ({options.Bootstrap} bootstrap resamples)", pairCount, p =>
            features.Rank(options, new Progress<int>(v => p.Report(v))), unit: "pairs");
        Directory.CreateDirectory(outDir);
        var json = JsonSerializer.SerializeToUtf8Bytes(report, JsonOptions);
        // The outputs are one set: written into a staging folder inside OUT (same file system), then renamed into place
        // with selection.json last, so a full disk or a crash never leaves selection.json without the rest.
        string staging = Path.Combine(outDir, $".staging{AtomicFile.TempMarker}{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            WriteSet(report, json, staging);
            foreach (var f in Directory.GetFiles(staging).Where(f => Path.GetFileName(f) != "selection.json").Order(StringComparer.Ordinal))
                File.Move(f, Path.Combine(outDir, Path.GetFileName(f)), overwrite: true);
            File.Move(Path.Combine(staging, "selection.json"), Path.Combine(outDir, "selection.json"), overwrite: true);
        }
        finally
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        Console.WriteLine($"Best pair: {report.Best.Image} x {report.Best.Text} ({MetricTitle(report.Metric, report.UnbiasedHsic)} {report.Best.Get(report.Metric).Value:F4}). " +
                          $"Report: {Path.Combine(outDir, "selection.json")} (SHA-256 {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(json))[..16]})");
        return report;
    }

    /// <summary>Writes selection.json, selection.md and the heatmaps into <paramref name="dir"/>.</summary>
    private static void WriteSet(EncoderSelectionReport report, byte[] json, string dir)
    {
        string outDir = dir;
        AtomicFile.WriteAllBytes(Path.Combine(outDir, "selection.json"), json);
        AtomicFile.WriteAllText(Path.Combine(outDir, "selection.md"), Markdown(report));
        PrintTable(report);
        if (Plots.Available)
        {
            var specs = new[] { PairMetric.LinearCka, PairMetric.KernelCka, PairMetric.MutualKnn }.Select(m =>
            {
                var (imgs, txts, grid) = report.Grid(m);
                var values = Enumerable.Range(0, imgs.Length).Select(i => Enumerable.Range(0, txts.Length).Select(j => (double?)grid[i, j]).ToArray()).ToArray();
                return new PlotSpec
                {
                    Kind = "heatmap", Path = Path.Combine(outDir, $"heatmap-{MetricSlug(m)}.png"), Values = values, RowLabels = imgs, ColumnLabels = txts,
                    Title = $"{MetricTitle(m, report.UnbiasedHsic)}, n = {report.N} (rows image, columns text)", Format = "0.000",
                };
            }).ToArray();
            Plots.Render(specs);
            Console.WriteLine($"Heatmaps: {string.Join(", ", specs.Select(s => Path.GetFileName(s.Path)))}");
        }
        else Console.WriteLine("Heatmaps skipped: the chart renderer is not installed beside the CLI.");
    }

    /// <summary>JSON settings of selection.json (indented, enums as strings).</summary>
    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };

    private static string MetricSlug(PairMetric m) => m switch { PairMetric.KernelCka => "rbf-cka", PairMetric.MutualKnn => "mutual-knn", _ => "linear-cka" };
    private static string MetricTitle(PairMetric m, bool unbiased) => m switch
    {
        PairMetric.KernelCka => unbiased ? "RBF CKA (unbiased)" : "RBF CKA",
        PairMetric.MutualKnn => "mutual k-NN",
        _ => unbiased ? "linear CKA (unbiased)" : "linear CKA",
    };

    private static string Cell(MetricEstimate e) => e.Low is double lo && e.High is double hi
        ? string.Create(CultureInfo.InvariantCulture, $"{e.Value:F3} [{lo:F3}, {hi:F3}]") : e.Value.ToString("F3", CultureInfo.InvariantCulture);
    private static string Shuf(MetricEstimate e) => e.Shuffled?.ToString("F3", CultureInfo.InvariantCulture) ?? "-";

    private static void PrintTable(EncoderSelectionReport r)
    {
        var t = new Table().Title(Markup.Escape($"Stage 1 on {r.N} probe images: value [{r.ConfidenceLevel:P0} bias-corrected bootstrap interval, {r.Bootstrap} resamples] / shuffled-pairs control"));
        foreach (var c in new[] { "#", "image", "text", r.UnbiasedHsic ? "linear CKA (unbiased)" : "linear CKA", $"RBF CKA, σ = {r.SigmaFraction:0.##} x median", $"mutual {r.KnnK}-NN" })
            t.AddColumn(Markup.Escape(c));
        string C(MetricEstimate e) => Markup.Escape($"{Cell(e)} / {Shuf(e)}");
        foreach (var p in r.Pairs)
            t.AddRow(p.Rank.ToString(CultureInfo.InvariantCulture), Markup.Escape(p.Image), Markup.Escape(p.Text), C(p.LinearCka), C(p.RbfCka), C(p.MutualKnn));
        AnsiConsole.Write(t);
    }

    /// <summary>The ranking as a Markdown table.</summary>
    public static string Markdown(EncoderSelectionReport r)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Stage 1 on {r.N} probe images; ordered by {MetricTitle(r.Metric, r.UnbiasedHsic)}; {r.ConfidenceLevel:P0} bias-corrected bootstrap intervals ({r.Bootstrap} resamples, seed {r.Seed}: percentiles shifted back by the resampling bias, see EncoderSelection); shuffled = text rows permuted.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"| # | image | text | linear CKA{(r.UnbiasedHsic ? " (unbiased)" : "")} | shuffled | RBF CKA (σ = {r.SigmaFraction:0.##} x median) | shuffled | mutual {r.KnnK}-NN | shuffled |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var p in r.Pairs)
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {p.Rank} | {p.Image} | {p.Text} | {Cell(p.LinearCka)} | {Shuf(p.LinearCka)} | {Cell(p.RbfCka)} | {Shuf(p.RbfCka)} | {Cell(p.MutualKnn)} | {Shuf(p.MutualKnn)} |");
        return sb.ToString();
    }

    private static string[] Split(string list, string option)
    {
        var v = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return v.Length > 0 ? v : throw new ArgumentException($"{option}: give at least one candidate.");
    }
}
