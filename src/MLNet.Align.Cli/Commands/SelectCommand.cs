using System.CommandLine;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Similarity;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>
/// <c>mlnet-align select</c>: stage 1. Ranks every (image candidate, text candidate) pair on a probe pairs file by
/// linear CKA, RBF CKA and mutual k-NN with bootstrap intervals and a shuffled-pairs control; writes selection.json,
/// selection.md and heatmaps. <c>--shard i/N</c> encodes one partition of the probe images into a features file;
/// <c>select merge</c> combines the partitions and ranks (byte-identical to a one-process run).
/// </summary>
public sealed class SelectCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var pairs = new Option<FileInfo>("--pairs") { Description = "Probe pairs file (.csv/.tsv with image and caption columns; several captions per image are averaged).", Required = true };
        var images = new Option<string>("--image-encoders") { Description = "Comma-separated image candidates: resnet18 (pooled) | resnet18.layer2 | resnet18.layer3 | resnet18.layer4.", DefaultValueFactory = _ => PackagedCandidates.DefaultImageCandidates };
        var texts = new Option<string>("--text-encoders") { Description = "Comma-separated text candidates: minilm (all-MiniLM-L6-v2) | arctic-xs (snowflake-arctic-embed-xs).", DefaultValueFactory = _ => PackagedCandidates.DefaultTextCandidates };
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

    /// <summary>Runs <c>select</c> (one process, or one partition with <paramref name="shard"/>, which only writes its
    /// features file).</summary>
    public static int Run(string pairsPath, string imageList, string textList, string outDir, string? shard, EncoderSelectionOptions options, CancellationToken ct = default)
    {
        options.Validate(); // before any encoding: a bad --bootstrap or --sigma fails at once
        var partition = shard is null ? null : ShardPartition.Parse(shard);
        var pairs = PairsFile.Read(pairsPath);
        using var candidates = PackagedCandidates.Open(imageList, textList);
        int items = Enumerable.Range(0, pairs.Images.Count).Count(id => partition is null || partition.Contains(SelectionFeatures.ItemKey(pairs, id)));
        Console.WriteLine($"Probe: {pairs.Path}: {pairs.Rows.Count} pairs, {pairs.Images.Count} images{(partition is null ? "" : $", {items} in partition {partition}")}");
        Console.WriteLine($"Candidates: image [{string.Join(", ", candidates.ImageNames)}] x text [{string.Join(", ", candidates.Texts.Select(t => t.Name))}]");
        using var outLock = CliLocks.Folder(outDir);
        var features = CliProgress.Run("Encoding probe items", items, p =>
            SelectionFeatures.Encode(pairs, candidates.Layers, candidates.Images, candidates.Texts, partition, new Progress<int>(v => p.Report(v)), ct));
        if (partition is not null)
        {
            string file = Path.Combine(outDir, FeaturesFileName(partition));
            features.Save(file);
            Console.WriteLine($"Features of partition {partition} ({features.Keys.Count} items) -> {file}; combine all partitions with 'select merge'.");
            return 0;
        }
        Report(features, outDir, options);
        return 0;
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

    /// <summary>Ranks <paramref name="features"/>, writes the report set (<see cref="EncoderSelectionReportWriter"/>) and
    /// prints the table. The demo's stage 1 does the same over its probe pairs.</summary>
    internal static EncoderSelectionReport Report(SelectionFeatures features, string outDir, EncoderSelectionOptions options)
    {
        int pairCount = features.Images.Count * features.Texts.Count;
        var report = CliProgress.Run($"Scoring {pairCount} pairs ({options.Bootstrap} bootstrap resamples)", pairCount, p =>
            features.Rank(options, new Progress<int>(v => p.Report(v))), unit: "pairs");
        var (json, heatmaps) = EncoderSelectionReportWriter.Write(report, outDir);
        ReportTables.Selection(report);
        Console.WriteLine(heatmaps.Count > 0 ? $"Heatmaps: {string.Join(", ", heatmaps.Select(Path.GetFileName))}"
            : "Heatmaps skipped: the chart renderer is not installed beside the CLI.");
        Console.WriteLine($"Best pair: {report.Best.Image} x {report.Best.Text} ({EncoderSelectionReportWriter.MetricTitle(report.Metric, report.UnbiasedHsic)} {report.Best.Get(report.Metric).Value:F4}). " +
                          $"Report: {Path.Combine(outDir, "selection.json")} (SHA-256 {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(json))[..16]})");
        return report;
    }
}
