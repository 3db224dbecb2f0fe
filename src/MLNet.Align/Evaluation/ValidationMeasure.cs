using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;
using MLNet.Align.Projection;

namespace MLNet.Align.Evaluation;

/// <summary>
/// Paired validation features for choosing a model: the frozen-encoder features of n held-out pairs, the positive group
/// of each pair (pairs that share an image file or an identical caption, see <see cref="PairGroups"/>), and optionally a
/// class label per pair with the prompt features of every class, for zero-shot top-1.
/// </summary>
public sealed record ValidationSet
{
    /// <summary>Pooled image features [n, image dim].</summary>
    public required EmbeddingMatrix Image { get; init; }
    /// <summary>Pooled text features [n, text dim], row i paired with image row i.</summary>
    public required EmbeddingMatrix Text { get; init; }
    /// <summary>Image tokens [n, T, d] when a model needs them, else null.</summary>
    public TokenTensor? ImageTokens { get; init; }
    /// <summary>Text tokens when a model needs them, else null.</summary>
    public TokenTensor? TextTokens { get; init; }
    /// <summary>Positive group of every row [n] (equal ids: each pair's caption is a correct answer for the other's
    /// image). Null: each row is its own group.</summary>
    public IReadOnlyList<long>? Groups { get; init; }
    /// <summary>Class index of every row [n] in [0, C), or null (no zero-shot figure).</summary>
    public IReadOnlyList<int>? Labels { get; init; }
    /// <summary>Class names [C] (with <see cref="Labels"/>).</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }
    /// <summary>Frozen text features of every class prompt [P, text dim] (with <see cref="Labels"/>).</summary>
    public EmbeddingMatrix? PromptFeatures { get; init; }
    /// <summary>Class of every prompt [P].</summary>
    public IReadOnlyList<int>? PromptClass { get; init; }
    /// <summary>Where the rows come from, for reports ("12% of the training pairs held out, by group", a file path...).</summary>
    public string Description { get; init; } = "";

    /// <summary>This set with zero-shot labels: the classes are the distinct <paramref name="labels"/> (sorted), each
    /// prompted with every template ("{}" = the class name) and encoded by <paramref name="encodePrompts"/>.</summary>
    /// <param name="labels">Class name of every row [n], none empty.</param>
    /// <param name="templates">Prompt templates with "{}".</param>
    /// <param name="encodePrompts">Frozen text features of prompts ([P, text dim]).</param>
    /// <exception cref="ArgumentException">Label count differs from the rows, an empty label, or fewer than 2 classes.</exception>
    public ValidationSet WithLabels(IReadOnlyList<string> labels, IReadOnlyList<string> templates, Func<IReadOnlyList<string>, EmbeddingMatrix> encodePrompts)
    {
        if (labels.Count != Image.Rows) throw new ArgumentException($"{labels.Count} labels for {Image.Rows} validation rows.", nameof(labels));
        if (labels.Any(string.IsNullOrWhiteSpace)) throw new ArgumentException("A validation label is empty.", nameof(labels));
        var classes = labels.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (classes.Length < 2) throw new ArgumentException($"Zero-shot validation needs at least 2 classes, got {classes.Length}.", nameof(labels));
        var index = classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i, StringComparer.Ordinal);
        return this with
        {
            Labels = labels.Select(l => index[l]).ToArray(), ClassNames = classes,
            PromptFeatures = encodePrompts(classes.SelectMany(c => templates.Select(t => t.Replace("{}", c, StringComparison.Ordinal))).ToArray()),
            PromptClass = classes.SelectMany((_, i) => templates.Select(_ => i)).ToArray(),
            Description = Description + $"; zero-shot over their {classes.Length} labels with {templates.Count} templates",
        };
    }
}

/// <summary>One model's validation figures (percent, 0-100).</summary>
public sealed record ValidationScores
{
    /// <summary>Validation pairs.</summary>
    [JsonPropertyName("rows")] public int Rows { get; init; }
    /// <summary>Distinct positive groups among them (distinct captions, at most).</summary>
    [JsonPropertyName("groups")] public int Groups { get; init; }
    /// <summary>Group-aware image-to-text Recall@1/5/10: an image's query is a hit at K when its group is among the K
    /// best-scoring groups (a group scores its best caption), ties counted against the model.</summary>
    [JsonPropertyName("i2t")] public required double[] ImageToText { get; init; }
    /// <summary>Group-aware text-to-image Recall@1/5/10, one query per group (its captions averaged as one
    /// query set): a hit at K when an image of the group ranks within K among images outside it, ties against.</summary>
    [JsonPropertyName("t2i")] public required double[] TextToImage { get; init; }
    /// <summary>Zero-shot top-1 over the labels' classes, or null without labels.</summary>
    [JsonPropertyName("zeroShotTop1")] public double? ZeroShotTop1 { get; init; }
    /// <summary>The selection score: the mean of image-to-text and text-to-image R@1, averaged with zero-shot top-1
    /// when labels exist. Higher is better.</summary>
    [JsonPropertyName("score")] public double Score { get; init; }
    /// <summary>Warnings about the measure itself (e.g. most captions are duplicates).</summary>
    [JsonPropertyName("warnings")] public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// The model-selection measure (issue "best alignment", item 4): retrieval that a duplicate caption cannot fool and
/// that never counts a NaN as a hit, plus zero-shot top-1 when labels exist.
/// </summary>
public static class ValidationMeasure
{
    /// <summary>The Ks of <see cref="ValidationScores.ImageToText"/> and <see cref="ValidationScores.TextToImage"/>.</summary>
    public static readonly int[] Ks = [1, 5, 10];

    /// <summary>Scores <paramref name="projector"/> on <paramref name="set"/>.</summary>
    /// <exception cref="ArgumentException">The set is inconsistent (row counts, labels without prompts), fewer than 2
    /// groups.</exception>
    /// <exception cref="ArithmeticException">The projector produced a NaN or infinite embedding (the message names
    /// the side and the row): a diverged model is an error, never a perfect score.</exception>
    public static ValidationScores Evaluate(IAlignedProjector projector, ValidationSet set)
    {
        ArgumentNullException.ThrowIfNull(projector);
        ArgumentNullException.ThrowIfNull(set);
        int n = set.Image.Rows;
        DenseMath.RequireSameRows(set.Image, set.Text, "validation images", "validation texts");
        var groups = GroupIndex(set.Groups, n, out int groupCount);
        if (groupCount < 2) throw new ArgumentException($"Validation needs at least 2 distinct groups of pairs, got {groupCount} (of {n} rows).");
        var zi = RequireFinite(projector.ProjectImages(set.Image, set.ImageTokens), projector.Name, "image");
        var zt = RequireFinite(projector.ProjectTexts(set.Text, set.TextTokens), projector.Name, "text");
        var (i2t, t2i) = GroupRecall(zi, zt, groups, groupCount);
        double? top1 = null;
        if (set.Labels != null)
        {
            if (set.ClassNames is null || set.PromptFeatures is null || set.PromptClass is null)
                throw new ArgumentException("Validation labels need ClassNames, PromptFeatures and PromptClass.");
            if (set.Labels.Count != n) throw new ArgumentException($"Validation has {set.Labels.Count} labels for {n} rows.");
            var classes = RequireFinite(ProjectorEvaluation.BuildClassEmbeddings(projector, set.PromptFeatures, set.PromptClass, set.ClassNames.Count),
                projector.Name, "class prompt");
            top1 = 100 * ZeroShotEvaluator.Evaluate(zi, classes, set.Labels, set.ClassNames).Top1;
        }
        var warnings = new List<string>();
        if (groupCount * 2 <= n)
            warnings.Add($"{n - groupCount} of {n} validation pairs repeat another pair's caption or image ({groupCount} distinct groups): " +
                "recall is counted per group, so duplicates cannot inflate it, but it measures fewer distinct answers than rows.");
        double r1 = (i2t[0] + t2i[0]) / 2;
        return new ValidationScores
        {
            Rows = n, Groups = groupCount, ImageToText = i2t, TextToImage = t2i, ZeroShotTop1 = top1,
            Score = top1 is double t ? (r1 + t) / 2 : r1, Warnings = warnings,
        };
    }

    private static int[] GroupIndex(IReadOnlyList<long>? ids, int n, out int count)
    {
        var index = new int[n];
        if (ids is null) { for (int i = 0; i < n; i++) index[i] = i; count = n; return index; }
        if (ids.Count != n) throw new ArgumentException($"Validation has {ids.Count} group ids for {n} rows.");
        var map = new Dictionary<long, int>();
        for (int i = 0; i < n; i++)
        {
            if (!map.TryGetValue(ids[i], out int g)) map[ids[i]] = g = map.Count;
            index[i] = g;
        }
        count = map.Count;
        return index;
    }

    internal static EmbeddingMatrix RequireFinite(EmbeddingMatrix m, string model, string side)
    {
        var d = m.Data;
        for (int i = 0; i < d.Length; i++)
            if (!float.IsFinite(d[i]))
                throw new ArithmeticException($"Model '{model}' produced a non-finite {side} embedding (row {i / m.Columns}, value {d[i]}): " +
                    "the model diverged or its input holds NaN/infinity; it cannot be scored.");
        return m;
    }

    // Rank of the true answer counted pessimistically: every competitor scoring >= the true answer ranks above it, so a
    // collapsed model (all similarities equal) scores 0, never 100.
    private static (double[] I2T, double[] T2I) GroupRecall(EmbeddingMatrix images, EmbeddingMatrix texts, int[] group, int groupCount)
    {
        int n = images.Rows;
        var i2tHits = new double[Ks.Length];
        var bestPerGroup = new float[groupCount];
        // t2i: for each text row, the best in-group image and the images outside the group that reach it.
        var t2iRank = new int[n];
        var sims = DenseMath.Similarity(texts, images); // [n texts, n images]
        for (int t = 0; t < n; t++)
        {
            var row = sims.AsSpan(t * n, n);
            float best = float.NegativeInfinity;
            for (int i = 0; i < n; i++) if (group[i] == group[t] && row[i] > best) best = row[i];
            int rank = 0;
            for (int i = 0; i < n; i++) if (group[i] != group[t] && row[i] >= best) rank++;
            t2iRank[t] = rank;
        }
        for (int i = 0; i < n; i++)
        {
            Array.Fill(bestPerGroup, float.NegativeInfinity);
            for (int t = 0; t < n; t++)
            {
                float s = sims[t * n + i];
                if (s > bestPerGroup[group[t]]) bestPerGroup[group[t]] = s;
            }
            float truth = bestPerGroup[group[i]];
            int rank = 0;
            for (int g = 0; g < groupCount; g++) if (g != group[i] && bestPerGroup[g] >= truth) rank++;
            for (int k = 0; k < Ks.Length; k++) if (rank < Ks[k]) i2tHits[k]++;
        }
        // One text query per group: the group's hit rate is the mean over its captions, then groups weigh equally.
        var groupHits = new double[groupCount, Ks.Length];
        var groupSize = new int[groupCount];
        for (int t = 0; t < n; t++)
        {
            groupSize[group[t]]++;
            for (int k = 0; k < Ks.Length; k++) if (t2iRank[t] < Ks[k]) groupHits[group[t], k]++;
        }
        var i2t = new double[Ks.Length];
        var t2i = new double[Ks.Length];
        for (int k = 0; k < Ks.Length; k++)
        {
            i2t[k] = 100 * i2tHits[k] / n;
            double s = 0;
            for (int g = 0; g < groupCount; g++) s += groupHits[g, k] / groupSize[g];
            t2i[k] = 100 * s / groupCount;
        }
        return (i2t, t2i);
    }
}
