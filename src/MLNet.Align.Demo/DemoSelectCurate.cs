using System.Text.Json.Serialization;
using MLNet.Align.Curation;
using MLNet.Align.Embeddings;
using MLNet.Align.Similarity;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;
using MLNet.Align.Projection;
using MLNet.Align.Terminal;

namespace MLNet.Align.Demo;

/// <summary>The demo's stage-1 result: the ranking of every packaged candidate pair on the probe pairs.</summary>
public sealed record DemoSelection
{
    /// <summary>Probe images (a seeded sample of the training split).</summary>
    [JsonPropertyName("probe_images")] public int ProbeImages { get; init; }
    /// <summary>Folder of selection.json / selection.md / heatmaps.</summary>
    [JsonPropertyName("directory")] public required string Directory { get; init; }
    /// <summary>The ranking (linear CKA first; RBF CKA and mutual k-NN beside it), with intervals and shuffled control.</summary>
    [JsonPropertyName("pairs")] public required CandidatePairScore[] Pairs { get; init; }
    /// <summary>Whether the pair the demo trains (pooled ResNet-18 = layer4, all-MiniLM-L6-v2) is ranked first.</summary>
    [JsonPropertyName("trained_pair_ranked_first")] public bool TrainedPairFirst { get; init; }
}

/// <summary>The demo's stage-2 result: the curated subset and the curated-vs-random comparison at equal size.</summary>
public sealed record DemoCuration
{
    /// <summary>The curation report (counts, coverage, per-concept counts).</summary>
    [JsonPropertyName("report")] public required CurationReport Report { get; init; }
    /// <summary>Subset pairs file.</summary>
    [JsonPropertyName("subset")] public required string Subset { get; init; }
    /// <summary>The default recipe on the curated subset (mean ± std over seeds).</summary>
    [JsonPropertyName("curated")] public required AblationRow Curated { get; init; }
    /// <summary>The default recipe on a seeded random subset of the same size.</summary>
    [JsonPropertyName("random")] public required AblationRow Random { get; init; }
}

/// <summary>Stages 1 and 2 of the method inside the demo: <c>select</c> over the packaged candidates and
/// <c>curate</c> over the training pool, then the default recipe on the curated subset vs a random one.</summary>
public static class DemoSelectCurate
{
    /// <summary>Probe size of the demo's selection. The kernels are n x n and every bootstrap resample recomputes them,
    /// so 1,000 probe images with 200 resamples took about 3 minutes per candidate pair on 2 cores; 500 with 100
    /// resamples keeps stage 1 near a minute (the intervals are then about 1.4x wider).</summary>
    public const int ProbeImages = 500;
    /// <summary>Bootstrap resamples of the demo's selection.</summary>
    public const int Bootstrap = 100;
    /// <summary>Curation settings: the packaged ImageNet-1k concepts (generic, not the evaluation sets' class names,
    /// so the curated subset is not tuned to the test sets), top 50 candidates per concept, at most 3 pairs each.</summary>
    public const int PerConcept = 50, Cap = 3;

    /// <summary>Ranks the packaged candidates (ResNet-18 layer2/3/4 x all-MiniLM-L6-v2 / ArcticXs) on a seeded sample
    /// of the training pairs with the <c>select</c> command's code; writes OUT/select/.</summary>
    public static DemoSelection Select(StoredPairs train, string outDir, bool quick, CancellationToken ct)
    {
        string dir = Path.Combine(outDir, "select");
        Directory.CreateDirectory(dir);
        var images = Enumerable.Range(0, train.UniqueImagePaths.Count).ToArray();
        new Random(0).Shuffle(images);
        int n = Math.Min(quick ? 300 : ProbeImages, images.Length);
        var picked = images.Take(n).Order().ToArray();
        var lines = new List<string> { "image\tcaption" };
        for (int r = 0; r < train.Count; r++)
            if (Array.BinarySearch(picked, train.ImageIds[r]) >= 0) lines.Add($"{train.ImagePaths[r]}\t{train.Captions[r]?.Replace('\t', ' ')}");
        string probe = Path.Combine(dir, "probe.tsv");
        AtomicFile.WriteAllText(probe, string.Join('\n', lines) + "\n");
        var report = Rank(probe, dir, new EncoderSelectionOptions { Bootstrap = quick ? 50 : Bootstrap }, ct);
        var best = report.Pairs[0];
        return new DemoSelection
        {
            ProbeImages = report.N, Directory = dir, Pairs = report.Pairs,
            TrainedPairFirst = best.Image == "resnet18.layer4" && best.Text == "all-MiniLM-L6-v2",
        };
    }

    /// <summary>Stage 1 over the packaged candidates, as <c>select</c> runs it: encode the probe items, rank, write the
    /// report set (<see cref="EncoderSelectionReportWriter"/>) and print the table.</summary>
    private static EncoderSelectionReport Rank(string probePath, string dir, EncoderSelectionOptions options, CancellationToken ct)
    {
        options.Validate();
        var pairs = PairsFile.Read(probePath);
        using var candidates = PackagedCandidates.Open(PackagedCandidates.DefaultImageCandidates, PackagedCandidates.DefaultTextCandidates);
        Console.WriteLine($"Probe: {pairs.Path}: {pairs.Rows.Count} pairs, {pairs.Images.Count} images");
        Console.WriteLine($"Candidates: image [{string.Join(", ", candidates.ImageNames)}] x text [{string.Join(", ", candidates.Texts.Select(t => t.Name))}]");
        using var outLock = CliLocks.Folder(dir);
        var features = CliProgress.Run("Encoding probe items", pairs.Images.Count, p =>
            SelectionFeatures.Encode(pairs, candidates.Layers, candidates.Images, candidates.Texts, null, new Progress<int>(v => p.Report(v)), ct));
        int pairCount = features.Images.Count * features.Texts.Count;
        var report = CliProgress.Run($"Scoring {pairCount} pairs ({options.Bootstrap} bootstrap resamples)", pairCount, p =>
            features.Rank(options, new Progress<int>(v => p.Report(v))), unit: "pairs");
        EncoderSelectionReportWriter.Write(report, dir);
        ReportTables.Selection(report);
        Console.WriteLine($"Best pair: {report.Best.Image} x {report.Best.Text}. Report: {Path.Combine(dir, "selection.json")}");
        return report;
    }

    /// <summary>Curates the training pool against the ImageNet-1k concepts (caption side, MiniLM prototypes from the
    /// photo templates), then trains the default recipe over <paramref name="seeds"/> seeds on the curated subset and
    /// on a random subset of the same size (seed 0), both scored by <paramref name="eval"/>; writes OUT/curate/.</summary>
    public static DemoCuration Curate(EmbeddingStore pool, StoredPairs train, DemoEval eval, FeatureCache cache, string outDir, int seeds, bool quick, CancellationToken ct)
    {
        string dir = Path.Combine(outDir, "curate");
        Directory.CreateDirectory(dir);
        var concepts = ConceptList.Read(Path.Combine(AppContext.BaseDirectory, "concepts", "imagenet-1k.tsv")) /* shipped beside the tool */;
        var prototypes = ConceptPrototypes.FromText(concepts, PromptTemplates.LoadOrBuiltIn("photo"), cache.Text, false, ct);
        var candidates = CliProgress.Run("Scoring pool pairs against 1,000 concepts", pool.Rows,
            p => ConceptCurator.Score(pool, prototypes, new CurationOptions { PerConcept = PerConcept, Cap = Cap }, p, ct), unit: "pairs");
        string subset = Path.Combine(dir, "subset.tsv");
        CurationResult result; CurationReport report;
        using (CliLocks.ForFile(subset))
            (result, report, _) = CurationReportWriter.Write(pool, candidates, Cap, subset, ct);
        Console.WriteLine($"Selected {report.Selected} pairs ({report.DistinctImages} images) for {report.Covered}/{report.Concepts} concepts (coverage {report.Coverage:P1}; {report.AtCap} at the cap of {Cap}).");
        var curatedRows = result.SelectedRows.SelectMany(r => r).Select(r => checked((int)r)).Order().ToArray();
        var all = Enumerable.Range(0, train.Count).ToArray();
        new Random(0).Shuffle(all);
        var randomRows = all.Take(curatedRows.Length).Order().ToArray();
        return new DemoCuration
        {
            Report = report, Subset = subset,
            Curated = TrainSubset($"curated ({curatedRows.Length} pairs)", curatedRows, train, eval, cache, seeds, quick, ct),
            Random = TrainSubset($"random ({randomRows.Length} pairs)", randomRows, train, eval, cache, seeds, quick, ct),
        };
    }

    /// <summary>Rows <paramref name="rows"/> of the training pairs in memory, with their matrices (for the closed-form
    /// initialisation).</summary>
    internal static (IAlignmentDataSource Data, EmbeddingMatrix Image, EmbeddingMatrix Text) Subset(StoredPairs train, int[] rows)
    {
        var image = train.Image.SelectRows(rows); var text = train.Text!.SelectRows(rows);
        // Group ids (same image path or caption text) so multi-positive recipes work on subsets too.
        var groups = PairGroups.FromImagesAndCaptions(rows.Select(r => train.ImagePaths[r]).ToArray(), rows.Select(r => train.Captions[r]).ToArray());
        return (new InMemoryAlignmentData(image, text, groupIds: groups), image, text);
    }

    /// <summary>The default recipe over several seeds on the rows <paramref name="rows"/> of the training pairs (the
    /// closed-form initialisation is fitted on the same rows).</summary>
    internal static AblationRow TrainSubset(string name, int[] rows, StoredPairs train, DemoEval eval, FeatureCache cache, int seeds, bool quick, CancellationToken ct)
    {
        var (data, image, text) = Subset(train, rows);
        var runs = new List<MethodScores>();
        for (int seed = 0; seed < seeds; seed++)
        {
            var (m, _) = DemoRecipes.Train(DemoRecipes.Default, seed, data, image, text, eval, cache.Image.Identity, cache.Text.Identity, quick, ct);
            runs.Add(eval.Score(m));
            m.Dispose();
        }
        var row = DemoEval.AblationRow(name, $"the default recipe on {rows.Length} of the {train.Count} training pairs", runs);
        Console.WriteLine("  " + DemoEval.RowLine(row));
        return row;
    }
}
