using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Evaluation;

/// <summary>Zero-shot classification result; accuracies are fractions in [0, 1].</summary>
public sealed record ZeroShotResult
{
    /// <summary>Number of evaluated images.</summary>
    [JsonPropertyName("n")] public int N { get; init; }
    /// <summary>Number of classes C.</summary>
    [JsonPropertyName("classes")] public int Classes { get; init; }
    /// <summary>Top-1 accuracy.</summary>
    [JsonPropertyName("top1")] public double Top1 { get; init; }
    /// <summary>Top-5 accuracy (top-min(5, C)).</summary>
    [JsonPropertyName("top5")] public double Top5 { get; init; }
    /// <summary>Mean over classes that have samples of the per-class top-1 accuracy (balanced accuracy).</summary>
    [JsonPropertyName("mean_per_class")] public double MeanPerClassAccuracy { get; init; }
    /// <summary>Per-class top-1 accuracy [C]; null for a class with no sample.</summary>
    [JsonPropertyName("per_class")] public required double?[] PerClassAccuracy { get; init; }
    /// <summary>Confusion counts [C][C]: row = true class, column = predicted class.</summary>
    [JsonPropertyName("confusion")] public required int[][] Confusion { get; init; }
    /// <summary>Predicted class (argmax) per image [N].</summary>
    [JsonPropertyName("predictions")] public required int[] Predictions { get; init; }
    /// <summary>Class names [C] when given, else "0".."C-1".</summary>
    [JsonPropertyName("class_names")] public required string[] ClassNames { get; init; }
}

/// <summary>
/// Zero-shot classification (paper section 4.1): score = image embedding · class embedding, prediction = argmax.
/// Class embeddings are used as given (the paper averages normalised prompt embeddings without renormalising, see
/// <see cref="ProjectorEvaluation.BuildClassEmbeddings"/>). Ties go to the lower class index.
/// </summary>
public static class ZeroShotEvaluator
{
    /// <summary>Evaluates zero-shot classification.</summary>
    /// <param name="images">Aligned image embeddings [N, E].</param>
    /// <param name="classEmbeddings">Class embeddings [C, E].</param>
    /// <param name="labels">True class per image, each in [0, C).</param>
    /// <param name="classNames">Optional names [C].</param>
    /// <exception cref="ArgumentException">No images (N = 0), widths differ, label count != N, a label is out of range, or names count != C.</exception>
    /// <exception cref="InvalidDataException">An embedding or a score is NaN or infinite (argmax over NaN scores
    /// would pick class 0 for every image); the message names the row and column.</exception>
    public static ZeroShotResult Evaluate(EmbeddingMatrix images, EmbeddingMatrix classEmbeddings, IReadOnlyList<int> labels, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(classEmbeddings);
        ArgumentNullException.ThrowIfNull(labels);
        int c = classEmbeddings.Rows;
        if (c == 0) throw new ArgumentException("No class embeddings.", nameof(classEmbeddings));
        if (images.Columns != classEmbeddings.Columns)
            throw new ArgumentException($"Image embeddings have width {images.Columns} but class embeddings {classEmbeddings.Columns}.");
        if (labels.Count != images.Rows)
            throw new ArgumentException($"Got {labels.Count} labels for {images.Rows} images.", nameof(labels));
        if (images.Rows == 0) throw new ArgumentException("No images to evaluate (an accuracy over n = 0 would be meaningless).", nameof(images));
        if (classNames is not null && classNames.Count != c)
            throw new ArgumentException($"Got {classNames.Count} class names for {c} class embeddings.", nameof(classNames));
        for (int i = 0; i < labels.Count; i++)
            if ((uint)labels[i] >= (uint)c)
                throw new ArgumentException($"Label {labels[i]} of image {i} is outside [0, {c}).", nameof(labels));
        FiniteCheck.Require(images, "Image embeddings", "zero-shot accuracy needs finite embeddings (a diverged model or a NaN feature?)");
        FiniteCheck.Require(classEmbeddings, "Class embeddings", "zero-shot accuracy needs finite embeddings (a diverged model or a NaN prompt feature?)");

        int kTop = Math.Min(5, c);
        var predictions = new int[images.Rows];
        var confusion = new int[c][];
        for (int i = 0; i < c; i++) confusion[i] = new int[c];
        int top1 = 0, top5 = 0;
        DenseMath.ForEachSimilarityChunk(images, classEmbeddings, (start, n, s) =>
        {
            RetrievalEvaluator.RequireFiniteScores(s.AsSpan(0, n * c), c, start, "image", "class");
            for (int r = 0; r < n; r++)
            {
                int i = start + r;
                var top = DenseMath.TopK(s.AsSpan(r * c, c), kTop);
                predictions[i] = top[0];
                confusion[labels[i]][top[0]]++;
                if (top[0] == labels[i]) top1++;
                if (Array.IndexOf(top, labels[i]) >= 0) top5++;
            }
        });

        var perClass = new double?[c];
        for (int k = 0; k < c; k++)
        {
            int total = confusion[k].Sum();
            perClass[k] = total == 0 ? null : confusion[k][k] / (double)total;
        }
        var present = perClass.Where(v => v.HasValue).Select(v => v!.Value).ToArray();
        int nImg = Math.Max(1, images.Rows);
        return new ZeroShotResult
        {
            N = images.Rows,
            Classes = c,
            Top1 = top1 / (double)nImg,
            Top5 = top5 / (double)nImg,
            MeanPerClassAccuracy = present.Length == 0 ? 0 : present.Average(),
            PerClassAccuracy = perClass,
            Confusion = confusion,
            Predictions = predictions,
            ClassNames = classNames?.ToArray() ?? Enumerable.Range(0, c).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
        };
    }
}
