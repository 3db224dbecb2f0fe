namespace MLNet.Align.Encoders;


/// <summary>The result of encoding a batch: pooled embeddings and, on request, token-level features.</summary>
/// <param name="Pooled">[batch, Dimension].</param>
/// <param name="Tokens">[batch, tokens, TokenDimension] or null when not requested / not available.</param>
public sealed record EncodedBatch(EmbeddingMatrix Pooled, TokenTensor? Tokens);

/// <summary>A frozen image encoder (any ONNX image model). Thread-safe for concurrent <see cref="EncodeBatch"/> calls
/// unless stated otherwise; holds native memory: dispose it.</summary>
public interface IImageEncoder : IDisposable
{
    /// <summary>Identity used for cache keys.</summary>
    EncoderIdentity Identity { get; }

    /// <summary>Encodes image files (PNG, JPEG, ...; transparent pixels composited onto white).</summary>
    /// <param name="imagePaths">Paths of the images, any count (batched internally).</param>
    /// <param name="withTokens">Also return token features (requires <see cref="EncoderIdentity.TokenDimension"/>).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <exception cref="FileNotFoundException">An image does not exist (the message names it).</exception>
    /// <exception cref="InvalidDataException">An image cannot be decoded (the message names it).</exception>
    EncodedBatch EncodeBatch(IReadOnlyList<string> imagePaths, bool withTokens = false, CancellationToken cancellationToken = default);

    /// <summary>Encodes decoded images held in memory (e.g. idx digits); any colour type, alpha composited onto white,
    /// greyscale replicated to 3 channels. The bitmaps are not disposed.</summary>
    EncodedBatch EncodeBitmaps(IReadOnlyList<SkiaSharp.SKBitmap> images, bool withTokens = false, CancellationToken cancellationToken = default);
}

/// <summary>A frozen text encoder (any ONNX sentence-transformer). Holds native memory: dispose it.</summary>
public interface ITextEncoder : IDisposable
{
    /// <summary>Identity used for cache keys.</summary>
    EncoderIdentity Identity { get; }

    /// <summary>Encodes texts. Pooled output follows the encoder's pooling and normalisation options.</summary>
    /// <param name="texts">Texts, any count (batched and length-bucketed internally; output order = input order).</param>
    /// <param name="withTokens">Also return the token features and lengths (attention mask).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <exception cref="ArgumentException">A text is null or empty/whitespace (the message gives its index).</exception>
    EncodedBatch EncodeBatch(IReadOnlyList<string> texts, bool withTokens = false, CancellationToken cancellationToken = default);
}
