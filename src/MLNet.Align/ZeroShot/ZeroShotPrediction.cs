using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Align.ZeroShot;

/// <summary>Input row of a zero-shot classifier zip: the image file path (column "ImagePath").</summary>
public sealed class ZeroShotImageInput
{
    /// <summary>Path of the image file (absolute, or relative to the classifier's image folder).</summary>
    public string ImagePath { get; set; } = "";
}

/// <summary>Output row of a zero-shot classifier zip (default column names).</summary>
public sealed class ZeroShotPrediction
{
    /// <summary>Class probabilities [C] in class order (softmax of logit_scale * cosine).</summary>
    public float[] Score { get; set; } = Array.Empty<float>();

    /// <summary>The predicted class name (the head's string output [1]; ML.NET maps it to a one-element text vector).</summary>
    public string[] PredictedClass { get; set; } = Array.Empty<string>();

    /// <summary>The key-typed predicted label as its raw value [1]: 1-based class index (0 = missing), key values =
    /// class names.</summary>
    public uint[] PredictedLabel { get; set; } = Array.Empty<uint>();

    /// <summary>The predicted class name, or "" when none.</summary>
    public string Label => PredictedClass.Length > 0 ? PredictedClass[0] : "";
}

/// <summary>Helpers over a loaded zero-shot classifier.</summary>
public static class ZeroShotModel
{
    /// <summary>Class names carried as slot names of the score column of <paramref name="schema"/>.</summary>
    /// <exception cref="InvalidOperationException">The column is missing or has no slot names.</exception>
    public static string[] ClassNames(DataViewSchema schema, string scoreColumnName = ZeroShotHeadNames.Score)
    {
        var col = schema.GetColumnOrNull(scoreColumnName)
            ?? throw new InvalidOperationException($"The model output has no column '{scoreColumnName}'.");
        if (col.Annotations.Schema.GetColumnOrNull("SlotNames") == null)
            throw new InvalidOperationException($"Column '{scoreColumnName}' carries no slot names (class names).");
        VBuffer<ReadOnlyMemory<char>> names = default;
        col.GetSlotNames(ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    /// <summary>Indices of the <paramref name="k"/> highest scores, best first (ties: lower index first).</summary>
    public static int[] TopK(ReadOnlySpan<float> scores, int k)
    {
        var idx = Enumerable.Range(0, scores.Length).ToArray();
        var copy = scores.ToArray();
        return idx.OrderByDescending(i => copy[i]).ThenBy(i => i).Take(k).ToArray();
    }
}
