using System.Numerics.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;

namespace MLNet.Align.Evaluation;

/// <summary>
/// Evaluates any <see cref="IAlignedProjector"/> (trained projector or closed-form baseline) on raw frozen-encoder
/// features with the same code path: project both modalities, then <see cref="ZeroShotEvaluator"/> or
/// <see cref="RetrievalEvaluator"/>.
/// </summary>
public static class ProjectorEvaluation
{
    /// <summary>
    /// Class embeddings from prompt features (paper section 4.1 / section 6 item 9): each prompt is projected
    /// (L2-normalised by the projector) and a class vector is the arithmetic mean of its prompts' embeddings,
    /// NOT renormalised unless <paramref name="renormalize"/> (open_clip renormalises; Freeze-Align does not).
    /// </summary>
    /// <param name="projector">The aligned projector.</param>
    /// <param name="promptFeatures">Frozen text-encoder features of every prompt [P, text dim].</param>
    /// <param name="promptClass">Class of each prompt [P], in [0, classCount).</param>
    /// <param name="classCount">C.</param>
    /// <param name="promptTokens">Prompt token features when the projector uses text tokens.</param>
    /// <param name="renormalize">L2-normalise each class vector after averaging.</param>
    /// <returns>[C, E].</returns>
    /// <exception cref="ArgumentException">Length mismatch, a class index out of range, or a class without prompts.</exception>
    public static EmbeddingMatrix BuildClassEmbeddings(IAlignedProjector projector, EmbeddingMatrix promptFeatures, IReadOnlyList<int> promptClass, int classCount, TokenTensor? promptTokens = null, bool renormalize = false)
    {
        ArgumentNullException.ThrowIfNull(projector);
        ArgumentNullException.ThrowIfNull(promptFeatures);
        ArgumentNullException.ThrowIfNull(promptClass);
        if (promptClass.Count != promptFeatures.Rows)
            throw new ArgumentException($"Got {promptClass.Count} prompt classes for {promptFeatures.Rows} prompt feature rows.", nameof(promptClass));
        return ClassEmbeddingBuilder.MeanPerClass(projector.ProjectTexts(promptFeatures, promptTokens), promptClass, classCount, renormalize);
    }

    /// <summary>Zero-shot classification of raw image features with prompts' raw text features.</summary>
    /// <param name="projector">The aligned projector.</param>
    /// <param name="imageFeatures">Frozen image features [N, image dim].</param>
    /// <param name="labels">True class per image [N].</param>
    /// <param name="promptFeatures">Frozen text features of the prompts [P, text dim].</param>
    /// <param name="promptClass">Class of each prompt [P].</param>
    /// <param name="classNames">Class names [C]; C = its count.</param>
    /// <param name="imageTokens">Image tokens when the projector uses them.</param>
    /// <param name="promptTokens">Prompt tokens when the projector uses them.</param>
    /// <param name="renormalizeClasses">See <see cref="BuildClassEmbeddings"/>.</param>
    public static ZeroShotResult ZeroShot(IAlignedProjector projector, EmbeddingMatrix imageFeatures, IReadOnlyList<int> labels,
        EmbeddingMatrix promptFeatures, IReadOnlyList<int> promptClass, IReadOnlyList<string> classNames,
        TokenTensor? imageTokens = null, TokenTensor? promptTokens = null, bool renormalizeClasses = false)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        RequireFiniteInputs(imageFeatures, "Image features", promptFeatures, "Prompt text features");
        var classes = BuildClassEmbeddings(projector, promptFeatures, promptClass, classNames.Count, promptTokens, renormalizeClasses);
        var images = projector.ProjectImages(imageFeatures, imageTokens);
        RequireFiniteOutputs(images, "Projected image embeddings", classes, "Projected class embeddings");
        return ZeroShotEvaluator.Evaluate(images, classes, labels, classNames);
    }

    /// <summary>Retrieval on raw features: captions [nCap, text dim] with the image row of each caption.</summary>
    public static RetrievalResult Retrieval(IAlignedProjector projector, EmbeddingMatrix imageFeatures, EmbeddingMatrix captionFeatures,
        IReadOnlyList<int> captionImage, IEnumerable<int>? ks = null, TokenTensor? imageTokens = null, TokenTensor? captionTokens = null)
    {
        ArgumentNullException.ThrowIfNull(projector);
        RequireFiniteInputs(imageFeatures, "Image features", captionFeatures, "Caption text features");
        var images = projector.ProjectImages(imageFeatures, imageTokens);
        var captions = projector.ProjectTexts(captionFeatures, captionTokens);
        RequireFiniteOutputs(images, "Projected image embeddings", captions, "Projected caption embeddings");
        return RetrievalEvaluator.Evaluate(images, captions, captionImage, ks);
    }

    // Inputs and outputs are checked apart so the message says whether the features or the projector are at fault.
    private static void RequireFiniteInputs(EmbeddingMatrix a, string aWhat, EmbeddingMatrix b, string bWhat)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        FiniteCheck.Require(a, aWhat, "the frozen encoder's features must be finite (check the encoder and its normalisation options)");
        FiniteCheck.Require(b, bWhat, "the frozen encoder's features must be finite (check the encoder and its normalisation options)");
    }

    private static void RequireFiniteOutputs(EmbeddingMatrix a, string aWhat, EmbeddingMatrix b, string bWhat)
    {
        const string hint = "the inputs are finite, so the projector's weights are not (a diverged training run: lower the learning rate)";
        FiniteCheck.Require(a, aWhat, hint);
        FiniteCheck.Require(b, bWhat, hint);
    }

    /// <summary>Retrieval on one-to-one pairs (row i of both matrices is a pair).</summary>
    /// <exception cref="ArgumentException">Row counts differ.</exception>
    public static RetrievalResult PairedRetrieval(IAlignedProjector projector, EmbeddingMatrix imageFeatures, EmbeddingMatrix textFeatures, IEnumerable<int>? ks = null)
    {
        DenseMath.RequireSameRows(imageFeatures, textFeatures, nameof(imageFeatures), nameof(textFeatures));
        return Retrieval(projector, imageFeatures, textFeatures, Enumerable.Range(0, imageFeatures.Rows).ToArray(), ks);
    }
}
