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

    /// <summary>One image's outcome in <see cref="PredictFiles"/>: a prediction, or the reason there is none.</summary>
    /// <param name="ImagePath">The path as given.</param>
    /// <param name="Prediction">The prediction, or null when the image was refused.</param>
    /// <param name="Error">Why it was refused (names the file), or null.</param>
    public sealed record FileOutcome(string ImagePath, ZeroShotPrediction? Prediction, string? Error);

    /// <summary>
    /// Classifies image files with a <see cref="PredictionEngine{TSrc, TDst}"/> over a classifier zip, checking each file
    /// first (<see cref="Encoders.ImageFileDecoder.CheckImageFile"/>: a regular file, a decodable header, within the pixel
    /// budget) so that a named pipe (which would block ML.NET's LoadImages forever), a device or a decompression bomb is
    /// refused with a reason instead of hanging or exhausting memory, and the good images of the batch are still answered.
    /// </summary>
    /// <param name="engine">A prediction engine over a zip from <c>zeroshot build</c> (not thread-safe: one caller at a time).</param>
    /// <param name="imagePaths">Image files.</param>
    /// <param name="maxPixels">Pixel budget per image (default <see cref="Encoders.ImageFileDecoder.DefaultMaxPixels"/>).</param>
    /// <returns>One outcome per path, in order.</returns>
    public static IReadOnlyList<FileOutcome> PredictFiles(PredictionEngine<ZeroShotImageInput, ZeroShotPrediction> engine, IReadOnlyList<string> imagePaths,
        long maxPixels = Encoders.ImageFileDecoder.DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(imagePaths);
        var result = new List<FileOutcome>(imagePaths.Count);
        foreach (var path in imagePaths)
        {
            try
            {
                Encoders.ImageFileDecoder.CheckImageFile(path, maxPixels);
                result.Add(new FileOutcome(path, engine.Predict(new ZeroShotImageInput { ImagePath = Path.GetFullPath(path) }), null));
            }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or InvalidOperationException)
            {
                result.Add(new FileOutcome(path, null, e.Message));
            }
        }
        return result;
    }

    /// <summary>Indices of the <paramref name="k"/> highest scores, best first (ties: lower index first).</summary>
    public static int[] TopK(ReadOnlySpan<float> scores, int k) => DenseMath.TopK(scores, k);
}
