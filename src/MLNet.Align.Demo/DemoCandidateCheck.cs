using System.Text.Json.Serialization;
using MLNet.Align.Demo.Data;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Similarity;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;
using MLNet.Align.Projection;
using MLNet.Align.Terminal;

namespace MLNet.Align.Demo;

/// <summary>One selection candidate trained with the default recipe: its stage-1 scores and stage-3 results.</summary>
public sealed record CandidateOutcome
{
    [JsonPropertyName("image")] public required string Image { get; init; }
    [JsonPropertyName("text")] public required string Text { get; init; }
    /// <summary>Stage-1 scores from the demo's selection (probe pairs): linear_cka, rbf_cka, mutual_knn.</summary>
    [JsonPropertyName("selection")] public required Dictionary<string, double> Selection { get; init; }
    /// <summary>Stage-3 results, mean ± std over seeds.</summary>
    [JsonPropertyName("result")] public required AblationRow Result { get; init; }
}

/// <summary>Does stage 1 predict stage 3? Every candidate's results and the Spearman rank correlations.</summary>
public sealed record DemoCandidateCheckResult
{
    /// <summary>Labelled images per set used here (a seeded subset of the demo's sets, to bound the encoding).</summary>
    [JsonPropertyName("labelled_per_set")] public int LabelledPerSet { get; init; }
    [JsonPropertyName("candidates")] public required List<CandidateOutcome> Candidates { get; init; }
    /// <summary>Spearman's rho (average ranks for ties) of each selection score against each downstream metric, over
    /// the candidates: selection metric -> downstream metric -> rho in [-1, 1].</summary>
    [JsonPropertyName("spearman")] public required Dictionary<string, Dictionary<string, double>> Spearman { get; init; }
}

/// <summary>
/// Issue "stages 1 and 2", item 2: trains the default recipe on every candidate pair of the demo's selection
/// (ResNet-18 layer2/3/4 x all-MiniLM-L6-v2 / ArcticXs) on the same training pairs and reports the rank correlation
/// between the selection scores and zero-shot / retrieval. The paper claims CKA predicts downstream quality; with six
/// candidates only |rho| &gt;= 0.886 is significant at p &lt; 0.05 (two-sided), which the report says.
/// </summary>
public static class DemoCandidateCheck
{
    /// <summary>Downstream metrics correlated with the selection scores.</summary>
    public static readonly string[] Downstream = ["fashion_mnist", "mnist", "zero_shot_mean", "heldout_r1", "proxy"];

    /// <summary>Runs the check (the tapped image features of the pairs are cached; labelled subsets are encoded in memory).</summary>
    public static DemoCandidateCheckResult Run(DataPreparationResult prep, StoredPairs train, StoredPairs held, StoredPairs proxy, DemoSelection selection,
        FeatureCache cache, PromptTemplates templates, int seeds, bool quick, CancellationToken ct)
    {
        Console.WriteLine("  Stage 1 vs stage 3: the default recipe on every selection candidate");
        using var layers = ImageLayerCandidates.ResNet18(32);
        using var tapCache = new FeatureCache(cache.Root, layers.Encoder, cache.Text) { Progress = CliProgress.Display, Log = CliProgress.Log };
        var tTrain = tapCache.EncodePairs(prep.TrainTsv, ct).LoadPooled(ct);
        var tHeld = tapCache.EncodePairs(prep.HeldOutTsv, ct).LoadPooled(ct);
        var tProxy = tapCache.EncodePairs(prep.ProxyTsv, ct).LoadPooled(ct);
        int perSet = quick ? 300 : 1000;
        var labelled = new Dictionary<string, (EmbeddingMatrix Features, int[] Labels, IReadOnlyList<string> ClassNames)>();
        foreach (var l in prep.Labelled)
        {
            var ds = ImageFolderDataset.Load(l.Folder);
            var pick = Enumerable.Range(0, ds.Count).ToArray();
            new Random(0).Shuffle(pick);
            pick = pick.Take(Math.Min(perSet, pick.Length)).Order().ToArray();
            var feats = CliProgress.Run($"Encoding {perSet} {l.Name} images (all layers)", 1, _ =>
                layers.Encoder.EncodeBatch(pick.Select(i => ds.Items[i].Path).ToList(), false, ct).Pooled);
            labelled[DemoRunner.Key(l.Name)] = (feats, pick.Select(i => ds.Items[i].Label).ToArray(), l.ClassNames);
        }

        var groups = PairGroups.FromImagesAndCaptions(tTrain.ImagePaths, tTrain.Captions);
        using var arctic = PackagedEncoders.ArcticXs();
        var texts = new List<ITextEncoder> { cache.Text, arctic };
        var outcomes = new List<CandidateOutcome>();
        foreach (var text in texts)
        {
            bool own = text == cache.Text;
            var trainText = own ? tTrain.Text! : CliProgress.Run($"Encoding {tTrain.Count} training captions ({text.Identity.Name})", 1, _ => text.EncodeBatch(Captions(tTrain), false, ct).Pooled);
            var heldText = own ? tHeld.Text! : text.EncodeBatch(Captions(tHeld), false, ct).Pooled;
            for (int li = 0; li < layers.Layers.Count; li++)
            {
                var layer = layers.Layers[li];
                int off = layers.Offsets[li], c = layer.Channels;
                var sets = labelled.ToDictionary(kv => kv.Key, kv => DemoEval.LabelledTask(kv.Key, (kv.Value.Features.SelectColumns(off, c), kv.Value.Labels, kv.Value.ClassNames), kv.Value.ClassNames, templates, text));
                var trainImage = tTrain.Image.SelectColumns(off, c);
                var ev = new DemoEval(sets, DemoEval.ProxyTasks(tProxy, templates, text, tProxy.Image.SelectColumns(off, c)),
                    new RetrievalTask(tHeld.Image.SelectColumns(off, c).SelectRows(tHeld.UniqueImageRows), heldText, tHeld.ImageIds), trainImage);
                var data = new InMemoryAlignmentData(trainImage, trainText, groupIds: groups);
                var runs = new List<MethodScores>();
                for (int seed = 0; seed < seeds; seed++)
                {
                    var (m, _) = DemoRecipes.Train(DemoRecipes.Default, seed, data, trainImage, trainText, ev, layers.Identities[li], text.Identity, quick, ct);
                    runs.Add(ev.Score(m));
                    m.Dispose();
                }
                var row = DemoEval.AblationRow($"{layer.Name} x {text.Identity.Name}", "default recipe on this candidate pair", runs);
                var perRun = runs.Select(r => labelled.Keys.Average(k => r.ZeroShot[k].Top1)).ToList();
                row.Mean["zero_shot_mean"] = perRun.Average();
                row.Std["zero_shot_mean"] = DemoEval.Std(perRun);
                var sel = selection.Pairs.FirstOrDefault(p => p.Image == layer.Name && p.Text == text.Identity.Name)
                    ?? throw new InvalidOperationException($"The selection has no candidate {layer.Name} x {text.Identity.Name}.");
                outcomes.Add(new CandidateOutcome
                {
                    Image = layer.Name, Text = text.Identity.Name, Result = row,
                    Selection = new() { ["linear_cka"] = sel.LinearCka.Value, ["rbf_cka"] = sel.RbfCka.Value, ["mutual_knn"] = sel.MutualKnn.Value },
                });
                Console.WriteLine($"  CKA {sel.LinearCka.Value:F3}  " + DemoEval.RowLine(row));
            }
        }
        var spearman = new Dictionary<string, Dictionary<string, double>>();
        foreach (var s in new[] { "linear_cka", "rbf_cka", "mutual_knn" })
        {
            spearman[s] = Downstream.ToDictionary(d => d, d => RankCorrelation.Spearman(outcomes.Select(o => o.Selection[s]).ToArray(), outcomes.Select(o => o.Result.Mean[d]).ToArray()));
            Console.WriteLine($"  Spearman rho, {s} vs " + string.Join(", ", spearman[s].Select(kv => $"{kv.Key} {kv.Value:F2}")) + $" (n = {outcomes.Count})");
        }
        return new DemoCandidateCheckResult { LabelledPerSet = perSet, Candidates = outcomes, Spearman = spearman };
    }

    private static string[] Captions(StoredPairs p) => p.Captions.Select((c, i) => c ?? throw new InvalidDataException($"{p.Store.Directory}: row {i} has no caption.")).ToArray();

}

/// <summary>Rank correlation for the stage-1-vs-stage-3 check.</summary>
public static class RankCorrelation
{
    /// <summary>Spearman's rho: the Pearson correlation of the ranks, ties given their average rank (so it is exact
    /// with ties too). NaN when either side is constant.</summary>
    /// <exception cref="ArgumentException">Lengths differ or fewer than 2 values.</exception>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException($"Spearman: {x.Count} x values vs {y.Count} y values.");
        if (x.Count < 2) throw new ArgumentException($"Spearman needs at least 2 values, got {x.Count}.");
        var rx = Ranks(x); var ry = Ranks(y);
        double mx = rx.Average(), my = ry.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < rx.Length; i++) { sxy += (rx[i] - mx) * (ry[i] - my); sxx += (rx[i] - mx) * (rx[i] - mx); syy += (ry[i] - my) * (ry[i] - my); }
        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>1-based ranks, ties averaged.</summary>
    public static double[] Ranks(IReadOnlyList<double> v)
    {
        var order = Enumerable.Range(0, v.Count).OrderBy(i => v[i]).ToArray();
        var ranks = new double[v.Count];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && v[order[j + 1]] == v[order[i]]) j++;
            double avg = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) ranks[order[k]] = avg;
            i = j + 1;
        }
        return ranks;
    }
}
