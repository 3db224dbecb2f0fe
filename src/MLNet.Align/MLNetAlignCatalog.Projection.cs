using MLNet.Align.Projection;

namespace Microsoft.ML;

public static partial class MLNetAlignCatalog
{
    /// <summary>
    /// Trains Freeze-Align projectors (docs/method.md 3, pooled-input architectures) on paired pooled embeddings and adds
    /// the aligned, L2-normalised image and text embeddings (float[E]) as new columns. A side is skipped at transform
    /// time when its input column is absent (e.g. image-only data).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="imageOutputColumnName">Aligned image embedding column, float[E].</param>
    /// <param name="textOutputColumnName">Aligned text embedding column, float[E].</param>
    /// <param name="imageInputColumnName">Pooled image embeddings, float vector.</param>
    /// <param name="textInputColumnName">Pooled text embeddings, float vector.</param>
    /// <param name="options">Architecture and training settings; null = pooled MLP heads, E = 512, paper optimiser settings.</param>
    public static AlignmentEstimator AlignEmbeddings(this TransformsCatalog catalog, string imageOutputColumnName = "ImageAligned",
        string textOutputColumnName = "TextAligned", string imageInputColumnName = "ImageEmbedding", string textInputColumnName = "TextEmbedding",
        AlignmentOptions? options = null)
        => AlignEmbeddings(catalog, new AlignmentEstimator.Options
        {
            ImageOutputColumnName = imageOutputColumnName, TextOutputColumnName = textOutputColumnName,
            ImageInputColumnName = imageInputColumnName, TextInputColumnName = textInputColumnName,
            Alignment = options ?? new AlignmentOptions(),
        });

    /// <summary>Trains alignment projectors with full control (progress, validation rows, selection callback, cancellation).</summary>
    public static AlignmentEstimator AlignEmbeddings(this TransformsCatalog catalog, AlignmentEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new AlignmentEstimator(GetContext(catalog), options);
    }

    private static MLContext GetContext(TransformsCatalog catalog)
    {
        // TransformsCatalog keeps its environment internal and offers no public route back to its MLContext, so the
        // estimator uses its own context, for schema work and log messages only (training is seeded by its options).
        return new MLContext();
    }
}
