using System.Numerics.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.Prompts;

namespace MLNet.Align.ZeroShot;

/// <summary>Zero-shot class embeddings: one row per class in the aligned space, plus the class names.</summary>
/// <param name="ClassNames">C unique class names, in row order.</param>
/// <param name="Matrix">[C, E] class vectors: mean of the L2-normalised aligned sentence embeddings of the class
/// (norm &lt;= 1; exactly 1 when <paramref name="Renormalized"/>).</param>
/// <param name="SentenceCounts">Sentences averaged per class (after padding).</param>
/// <param name="Renormalized">True when each row was L2-normalised again after averaging.</param>
public sealed record ClassEmbeddings(IReadOnlyList<string> ClassNames, EmbeddingMatrix Matrix, IReadOnlyList<int> SentenceCounts, bool Renormalized)
{
    /// <summary>Number of classes C.</summary>
    public int Count => ClassNames.Count;

    /// <summary>Width E of the aligned space.</summary>
    public int Dimension => Matrix.Columns;
}

/// <summary>Options of <see cref="ClassEmbeddingBuilder.Build"/>.</summary>
public sealed class ClassEmbeddingOptions
{
    /// <summary>L2-normalise each class vector after averaging. Default false: the paper averages the normalised
    /// sentence embeddings and does NOT renormalise (docs/method.md section 6 item 9); open_clip's
    /// build_zero_shot_classifier does renormalise. The argmax is the same either way only when all classes have
    /// equal mean norm, so the choice changes predictions.</summary>
    public bool Renormalize { get; set; }

    /// <summary>Pad each class's sentence list to at least this many by repeating its FIRST sentence, reproducing the
    /// authors' evaluation quirk (19 in their code, docs/method.md section 4.1). Null (default): no padding.</summary>
    public int? PadSentencesTo { get; set; }

    /// <summary>Sentences per text-encoder call (memory bound; results do not depend on it).</summary>
    public int BatchSize { get; set; } = 256;

    /// <summary>Reports the number of sentences encoded so far.</summary>
    public IProgress<int>? Progress { get; set; }

    /// <summary>Checked between batches.</summary>
    public CancellationToken CancellationToken { get; set; }
}

/// <summary>
/// Builds the zero-shot classifier weights, like open_clip's <c>build_zero_shot_classifier</c> and the paper's
/// <c>evaluation_token_average_fast_vdt</c> (docs/method.md section 4.1): for every class, sentences = templates filled with
/// the class name, plus its descriptions; each sentence -> frozen text encoder -> text projector (L2-normalised) ->
/// arithmetic mean per class.
/// </summary>
public static class ClassEmbeddingBuilder
{
    /// <summary>Builds the [C, E] class matrix.</summary>
    /// <param name="classNames">C unique, non-blank class names.</param>
    /// <param name="templates">Templates applied to each class name, or null for descriptions only.</param>
    /// <param name="textEncoder">The frozen text encoder the projector was trained on.</param>
    /// <param name="projector">The trained projector; its text side maps encoder output to the aligned space.</param>
    /// <param name="descriptions">Optional per-class sentences, used verbatim.</param>
    /// <param name="options">Renormalisation, padding, batching.</param>
    /// <exception cref="ArgumentException">Empty or duplicate class names; no templates and no descriptions; a class
    /// with no sentence; text encoder width differs from what the projector expects.</exception>
    public static ClassEmbeddings Build(IReadOnlyList<string> classNames, PromptTemplates? templates, ITextEncoder textEncoder,
        IAlignedProjector projector, ClassDescriptions? descriptions = null, ClassEmbeddingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(textEncoder);
        ArgumentNullException.ThrowIfNull(projector);
        options ??= new ClassEmbeddingOptions();
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), $"BatchSize must be positive, got {options.BatchSize}.");
        var names = ClassList.Validate(classNames);
        if (templates == null && descriptions == null) throw new ArgumentException("Give prompt templates, class descriptions, or both.");

        // Sentences of all classes, flattened; classStart[c] .. classStart[c+1] belong to class c.
        var sentences = new List<string>();
        var classStart = new int[names.Count + 1];
        for (int c = 0; c < names.Count; c++)
        {
            classStart[c] = sentences.Count;
            var own = new List<string>();
            if (templates != null) own.AddRange(templates.Apply(names[c]));
            if (descriptions != null) own.AddRange(descriptions.For(names[c]));
            if (own.Count == 0) throw new ArgumentException($"Class '{names[c]}' has no sentence: no templates were given and the descriptions have none for it.");
            if (options.PadSentencesTo is int pad) while (own.Count < pad) own.Add(own[0]);
            sentences.AddRange(own);
        }
        classStart[names.Count] = sentences.Count;

        var parts = new List<EmbeddingMatrix>();
        for (int start = 0; start < sentences.Count; start += options.BatchSize)
        {
            options.CancellationToken.ThrowIfCancellationRequested();
            var batch = sentences.GetRange(start, Math.Min(options.BatchSize, sentences.Count - start));
            var enc = textEncoder.EncodeBatch(batch, projector.UsesTextTokens, options.CancellationToken);
            if (projector.UsesTextTokens && enc.Tokens == null)
                throw new ArgumentException($"Projector '{projector.Name}' needs text token features but text encoder '{textEncoder.Identity.Name}' returned none.");
            var part = projector.ProjectTexts(enc.Pooled, projector.UsesTextTokens ? enc.Tokens : null);
            if (part.Rows != batch.Count) throw new InvalidOperationException($"Projector '{projector.Name}' returned {part.Rows} rows for {batch.Count} sentences.");
            parts.Add(part);
            options.Progress?.Report(start + batch.Count);
        }

        var aligned = EmbeddingMatrix.Concat(parts);
        var sentenceClass = new int[sentences.Count];
        var counts = new int[names.Count];
        for (int c = 0; c < names.Count; c++)
        {
            counts[c] = classStart[c + 1] - classStart[c];
            for (int i = classStart[c]; i < classStart[c + 1]; i++) sentenceClass[i] = c;
        }
        return new ClassEmbeddings(names, MeanPerClass(aligned, sentenceClass, names.Count, options.Renormalize), counts, options.Renormalize);
    }

    /// <summary>The one class-vector averaging of the library (the builder and the evaluation helpers both use it):
    /// class vector = arithmetic mean of its sentences' aligned embeddings, L2-normalised again only when
    /// <paramref name="renormalize"/> (Freeze-Align does not, open_clip does; docs/method.md 4.1 and 6).</summary>
    /// <param name="aligned">[S, E] aligned sentence embeddings.</param>
    /// <param name="sentenceClass">[S] class of each sentence, in [0, classCount).</param>
    /// <param name="classCount">C.</param>
    /// <param name="renormalize">L2-normalise each class vector after averaging.</param>
    /// <returns>[C, E].</returns>
    /// <exception cref="ArgumentException">Length mismatch, a class index out of range, or a class without sentences.</exception>
    internal static EmbeddingMatrix MeanPerClass(EmbeddingMatrix aligned, IReadOnlyList<int> sentenceClass, int classCount, bool renormalize)
    {
        if (sentenceClass.Count != aligned.Rows)
            throw new ArgumentException($"Got {sentenceClass.Count} sentence classes for {aligned.Rows} embedding rows.", nameof(sentenceClass));
        int e = aligned.Columns;
        var (sums, counts) = DenseMath.GroupSums(aligned, sentenceClass, classCount, unitRows: false, nameof(sentenceClass));
        for (int k = 0; k < classCount; k++)
        {
            if (counts[k] == 0) throw new ArgumentException($"Class {k} has no prompt sentence.", nameof(sentenceClass));
            var dst = sums.AsSpan(k * e, e);
            TensorPrimitives.Divide(dst, counts[k], dst);
        }
        if (renormalize) DenseMath.NormalizeRowsInPlace(sums, classCount, e);
        return new EmbeddingMatrix(sums, classCount, e);
    }
}
