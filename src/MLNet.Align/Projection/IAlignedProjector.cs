using MLNet.Align.Embeddings;

namespace MLNet.Align.Projection;

/// <summary>
/// Maps frozen-encoder features of both modalities into one shared, L2-normalised embedding space. Implemented by the
/// trained projectors (TorchSharp, paper section 3) and by the closed-form baselines (least squares, reverse ridge,
/// orthogonal Procrustes, ASIF), so that zero-shot and retrieval evaluation treat them alike.
/// </summary>
public interface IAlignedProjector
{
    /// <summary>Short name for reports ("projector", "least_squares", "procrustes", ...).</summary>
    string Name { get; }

    /// <summary>Width E of the shared space.</summary>
    int EmbeddingDimension { get; }

    /// <summary>True when <see cref="ProjectImages"/> needs image token features (token-level projector).</summary>
    bool UsesImageTokens { get; }

    /// <summary>True when <see cref="ProjectTexts"/> needs text token features (token-level projector).</summary>
    bool UsesTextTokens { get; }

    /// <summary>Multiplier applied to cosine similarities before a softmax (1 / temperature); 100 for baselines.</summary>
    float LogitScale { get; }

    /// <summary>Projects image features: pooled [n, image dim] (+ tokens [n, T, d] when <see cref="UsesImageTokens"/>)
    /// to [n, E], each row L2-normalised.</summary>
    /// <exception cref="ArgumentException">A width differs from the one the projector was fitted on.</exception>
    EmbeddingMatrix ProjectImages(EmbeddingMatrix pooled, TokenTensor? tokens = null);

    /// <summary>Projects text features: pooled [n, text dim] (+ tokens when <see cref="UsesTextTokens"/>) to [n, E],
    /// each row L2-normalised.</summary>
    /// <exception cref="ArgumentException">A width differs from the one the projector was fitted on.</exception>
    EmbeddingMatrix ProjectTexts(EmbeddingMatrix pooled, TokenTensor? tokens = null);
}
