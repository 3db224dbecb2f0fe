using Microsoft.ML;
using MLNet.Align.Projection;

namespace MLNet.Align.ZeroShot;

/// <summary>Builds a zero-shot classifier chain and saves it as a self-contained ML.NET zip.</summary>
public static class ZeroShotClassifierIO
{
    /// <summary>Fits <see cref="ZeroShotClassifierEstimator"/> on the input schema and writes the zip atomically
    /// (temp file + rename). Input column "ImagePath" (string) unless <paramref name="options"/> says otherwise.</summary>
    public static void BuildAndSave(MLContext mlContext, IOnnxExportableProjector projector, ClassEmbeddings classes, string zipPath,
        ZeroShotClassifierEstimator.Options? options = null)
    {
        // The caller's options are copied, never modified.
        options = (options ?? new ZeroShotClassifierEstimator.Options()).Clone();
        options.Projector = projector;
        options.Classes = classes;
        var empty = mlContext.Data.LoadFromEnumerable(new List<ZeroShotImageInput>());
        if (options.ImagePathColumnName != nameof(ZeroShotImageInput.ImagePath))
            throw new ArgumentException("BuildAndSave uses the ImagePath input column; build the estimator directly for other names.");
        var model = new ZeroShotClassifierEstimator(mlContext, options).Fit(empty);
        try
        {
            AtomicFile.Write(zipPath, s => mlContext.Model.Save(model, empty.Schema, s));
        }
        finally
        {
            foreach (var t in model) (t as IDisposable)?.Dispose();
        }
    }
}
