using MLNet.Align.Encoders;

namespace Microsoft.ML;

/// <summary>MLNet.Align catalog extensions (one file per area).</summary>
public static partial class MLNetAlignCatalog
{
    /// <summary>Embeds the images whose paths are in <paramref name="inputColumnName"/> with a frozen image encoder
    /// (e.g. <see cref="PackagedEncoders.ResNet18"/>), into a float[Dimension] column, a batch of rows at a time.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output column (known-size float vector).</param>
    /// <param name="encoder">The encoder; not owned, dispose it after the last use of the transformer.</param>
    /// <param name="inputColumnName">Text column of image paths; null = <paramref name="outputColumnName"/>.</param>
    public static ImageEmbeddingEstimator EmbedImages(this TransformsCatalog catalog, string outputColumnName, IImageEncoder encoder, string? inputColumnName = null)
        => new(encoder, new ImageEmbeddingEstimator.Options { OutputColumnName = outputColumnName, InputColumnName = inputColumnName });

    /// <summary>Embeds images with options (token column, batch size).</summary>
    public static ImageEmbeddingEstimator EmbedImages(this TransformsCatalog catalog, IImageEncoder encoder, ImageEmbeddingEstimator.Options options)
        => new(encoder, options);

    /// <summary>Embeds the texts in <paramref name="inputColumnName"/> with a frozen text encoder (e.g.
    /// <see cref="PackagedEncoders.MiniLM"/>), into a float[Dimension] column, a batch of rows at a time.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output column (known-size float vector).</param>
    /// <param name="encoder">The encoder; not owned.</param>
    /// <param name="inputColumnName">Text column; null = <paramref name="outputColumnName"/>.</param>
    public static TextEmbeddingEstimator EmbedText(this TransformsCatalog catalog, string outputColumnName, ITextEncoder encoder, string? inputColumnName = null)
        => new(encoder, new TextEmbeddingEstimator.Options { OutputColumnName = outputColumnName, InputColumnName = inputColumnName });

    /// <summary>Embeds texts with options (token column, batch size).</summary>
    public static TextEmbeddingEstimator EmbedText(this TransformsCatalog catalog, ITextEncoder encoder, TextEmbeddingEstimator.Options options)
        => new(encoder, options);
}
