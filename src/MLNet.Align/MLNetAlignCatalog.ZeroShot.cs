using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;

namespace Microsoft.ML;

/// <summary>MLNet.Align catalog extensions (one file per area).</summary>
public static partial class MLNetAlignCatalog
{
    /// <summary>
    /// A zero-shot image classifier: image path -> frozen image encoder (ResNet18 by default) -> trained image projector
    /// -> cosine scores against precomputed class embeddings -> softmax. Fit needs only the input schema; the fitted
    /// chain consists of stock ML.NET transformers and saves with <c>mlContext.Model.Save</c>.
    /// See <see cref="ZeroShotClassifierEstimator"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="projector">The trained, ONNX-exportable projector.</param>
    /// <param name="classes">Class names and embeddings from <see cref="ClassEmbeddingBuilder.Build"/>.</param>
    /// <param name="outputColumnName">Predicted class name column (a Score column [C] is added beside it).</param>
    /// <param name="inputColumnName">Image path column (string).</param>
    /// <param name="imageFolder">Folder relative image paths are resolved against (null: as given).</param>
    public static ZeroShotClassifierEstimator ZeroShotClassifier(this TransformsCatalog catalog, IOnnxExportableProjector projector,
        ClassEmbeddings classes, string outputColumnName = ZeroShotHeadNames.PredictedLabel, string inputColumnName = "ImagePath", string? imageFolder = null)
        => ZeroShotClassifier(catalog, new ZeroShotClassifierEstimator.Options
        {
            Projector = projector, Classes = classes, PredictedLabelColumnName = outputColumnName,
            ImagePathColumnName = inputColumnName, ImageFolder = imageFolder,
        });

    /// <summary>A zero-shot image classifier with full options (see <see cref="ZeroShotClassifierEstimator.Options"/>).</summary>
    public static ZeroShotClassifierEstimator ZeroShotClassifier(this TransformsCatalog catalog, ZeroShotClassifierEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ZeroShotClassifierEstimator(catalog, options);
    }
}
