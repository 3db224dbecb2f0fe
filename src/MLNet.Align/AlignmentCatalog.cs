using MLNet.Align.Recipes;
using Microsoft.ML.Runtime;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;

namespace Microsoft.ML;

/// <summary>Entry point of MLNet.Align on an <see cref="MLContext"/>: <c>mlContext.Alignment</c>, beside ML.NET's own
/// <c>mlContext.Transforms</c>. Every estimator it creates uses that context: its <see cref="MLContext.Log"/> receives
/// the training lines, its <see cref="MLContext.GpuDeviceId"/> / <see cref="MLContext.FallbackToCpu"/> reach the ONNX
/// transforms of the zero-shot chain.</summary>
public static class MLNetAlignCatalog
{
    extension(MLContext mlContext)
    {
        /// <summary>MLNet.Align's estimators (embedding, alignment training, zero-shot classification) on this context.</summary>
        public AlignmentCatalog Alignment => new(mlContext);
    }
}

/// <summary>
/// MLNet.Align's estimators, created on the caller's <see cref="MLContext"/> (<c>mlContext.Alignment</c>). Each verb has
/// a short overload (output column first, then input column, then the model) and an overload taking the estimator's
/// <c>Options</c>, which hold the model too. Options are read when the estimator is created and never modified.
/// </summary>
public sealed class AlignmentCatalog
{
    internal AlignmentCatalog(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        Context = mlContext;
    }

    /// <summary>The context the estimators use.</summary>
    public MLContext Context { get; }

    /// <summary>Embeds the images whose paths are in <paramref name="inputColumnName"/> with a frozen image encoder
    /// (e.g. <see cref="PackagedEncoders.ResNet18"/>) into a known-size float[Dimension] column, a batch of rows at a
    /// time.</summary>
    /// <param name="outputColumnName">Output column (known-size vector of Single [Dimension]).</param>
    /// <param name="inputColumnName">Text column of image paths.</param>
    /// <param name="encoder">The encoder; not owned: dispose it after the transformer's last use.</param>
    /// <exception cref="ArgumentNullException"><paramref name="encoder"/> is null.</exception>
    public ImageEmbeddingEstimator EmbedImages(string outputColumnName, string inputColumnName, IImageEncoder encoder)
        => EmbedImages(new ImageEmbeddingEstimator.Options
        {
            OutputColumnName = outputColumnName, InputColumnName = inputColumnName,
            Encoder = encoder ?? throw new ArgumentNullException(nameof(encoder)),
        });

    /// <summary>Embeds images with full options (encoder, token column, batch size).</summary>
    /// <param name="options">Encoder and columns; <see cref="ImageEmbeddingEstimator.Options.Encoder"/> is required.</param>
    /// <exception cref="ArgumentException">No encoder, or a non-positive batch size.</exception>
    public ImageEmbeddingEstimator EmbedImages(ImageEmbeddingEstimator.Options options) => new(Context, options);

    /// <summary>Embeds the texts in <paramref name="inputColumnName"/> with a frozen sentence encoder (e.g.
    /// <see cref="PackagedEncoders.MiniLM"/>) into a known-size float[Dimension] column, a batch of rows at a time.</summary>
    /// <param name="outputColumnName">Output column (known-size vector of Single [Dimension]).</param>
    /// <param name="inputColumnName">Text column.</param>
    /// <param name="encoder">The encoder; not owned.</param>
    /// <exception cref="ArgumentNullException"><paramref name="encoder"/> is null.</exception>
    public TextEmbeddingEstimator EmbedText(string outputColumnName, string inputColumnName, ITextEncoder encoder)
        => EmbedText(new TextEmbeddingEstimator.Options
        {
            OutputColumnName = outputColumnName, InputColumnName = inputColumnName,
            Encoder = encoder ?? throw new ArgumentNullException(nameof(encoder)),
        });

    /// <summary>Embeds texts with full options (encoder, token column, batch size).</summary>
    /// <param name="options">Encoder and columns; <see cref="TextEmbeddingEstimator.Options.Encoder"/> is required.</param>
    /// <exception cref="ArgumentException">No encoder, or a non-positive batch size.</exception>
    public TextEmbeddingEstimator EmbedText(TextEmbeddingEstimator.Options options) => new(Context, options);

    /// <summary>
    /// Trains Freeze-Align projectors (docs/method.md 3; pooled-input architectures) on paired pooled embeddings in
    /// <c>Fit</c> and adds the aligned, L2-normalised image and text embeddings (float[E]) as new columns. Training lines
    /// go to <see cref="MLContext.Log"/>. A side is skipped at transform time when its input column is absent.
    /// </summary>
    /// <param name="imageOutputColumnName">Aligned image embedding column, float[E].</param>
    /// <param name="textOutputColumnName">Aligned text embedding column, float[E].</param>
    /// <param name="imageInputColumnName">Pooled image embeddings, float vector.</param>
    /// <param name="textInputColumnName">Pooled text embeddings, float vector.</param>
    /// <param name="alignment">Architecture and training settings; null = pooled MLP heads, E = 512, the paper's
    /// optimiser settings.</param>
    /// <exception cref="ArgumentException">A token-level architecture (needs <see cref="AlignmentTrainer"/>).</exception>
    public AlignmentEstimator AlignEmbeddings(string imageOutputColumnName = "ImageAligned", string textOutputColumnName = "TextAligned",
        string imageInputColumnName = "ImageEmbedding", string textInputColumnName = "TextEmbedding", AlignmentOptions? alignment = null)
        => AlignEmbeddings(new AlignmentEstimator.Options
        {
            ImageOutputColumnName = imageOutputColumnName, TextOutputColumnName = textOutputColumnName,
            ImageInputColumnName = imageInputColumnName, TextInputColumnName = textInputColumnName,
            Alignment = alignment ?? new AlignmentOptions(),
        });

    /// <summary>Trains alignment projectors with full control (progress, validation rows, selection callback,
    /// cancellation), or, with <see cref="AlignmentEstimator.Options.Recipe"/> set, fits that recipe (or <c>auto</c>)
    /// with <see cref="Train"/>'s code.</summary>
    /// <param name="options">Columns, architecture and training settings.</param>
    /// <exception cref="ArgumentException">A token-level architecture (needs <see cref="AlignmentTrainer"/>).</exception>
    public AlignmentEstimator AlignEmbeddings(AlignmentEstimator.Options options) => new(Context, options, (data, o) =>
    {
        // The same selection as Train; the transformer owns the model, the rest of the selection is dropped.
        var selection = Train(data, o.Recipe!, new RecipeSelectionOptions { Seed = o.Alignment.Training.Seed }, o.CancellationToken);
        return (selection.Model, selection.History);
    });

    /// <summary>
    /// Fits <paramref name="recipe"/> on <paramref name="data"/>, or with <c>"auto"</c> (the default) every candidate of
    /// <see cref="RecipeCatalog.AutoCandidates"/>, scores each on pairs held out as whole groups and keeps the best: the
    /// code behind <c>mlnet-align train --recipe</c> (<see cref="RecipeSelector"/>), so the command line and an app
    /// get the same model. The encoder identities come from the data source (an embedding store's manifest records
    /// them) and are saved with the model: <c>selection.Model.Save(directory)</c> writes the aligned-model bundle,
    /// which <c>zeroshot build</c>, <see cref="ZeroShotClassifier(ZeroShotClassifierEstimator.Options)"/> and
    /// <see cref="AlignedModel.Load"/> read.
    /// </summary>
    /// <param name="data">The pairs' features (e.g. <see cref="MLNet.Align.Embeddings.EmbeddingStoreDataSource"/>).</param>
    /// <param name="recipe">A name of <see cref="RecipeCatalog.Names"/>: <c>auto</c>, <c>least-squares</c>,
    /// <c>reverse-ridge</c>, <c>procrustes</c>, <c>asif</c>, <c>locked-text</c>, <c>both-sides</c>, <c>pooled-mlp</c>,
    /// <c>paper</c>.</param>
    /// <param name="options">Validation data, labels for zero-shot validation, seed; null = the defaults (10% of the
    /// pairs held out as whole groups, seed 42). Its <see cref="RecipeSelectionOptions.Candidates"/> is replaced by
    /// <paramref name="recipe"/> unless that is <c>auto</c>.</param>
    /// <param name="cancellationToken">Checked between batches and candidates.</param>
    /// <returns>The chosen model, every candidate's validation scores and why the winner won; dispose it (or its
    /// model) when done.</returns>
    /// <exception cref="ArgumentException">An unknown recipe name, a recipe that needs token features the data lacks,
    /// or too few pairs to hold out validation data.</exception>
    public RecipeSelection Train(IAlignmentDataSource data, string recipe = RecipeCatalog.Auto, RecipeSelectionOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(recipe);
        options ??= new RecipeSelectionOptions();
        if (!string.Equals(recipe, RecipeCatalog.Auto, StringComparison.OrdinalIgnoreCase))
        {
            var single = RecipeCatalog.Get(recipe);
            if (single.NeedsTokens && (data.ImageTokenDimension is null || data.TextTokenDimension is null))
                throw new ArgumentException($"Recipe '{single.Name}' needs token features: embed the pairs with tokens.", nameof(recipe));
            options = options with { Candidates = [single] };
        }
        using var channel = ((IChannelProvider)Context).Start("Alignment.Train");
        return RecipeSelector.Select(data, options, c => new RecipeContext(c.Data, c.TrainRows, c.HeldOutRows, c.Validation)
        {
            Seed = options.Seed, Log = message => channel.Info(MessageSensitivity.None, message), CancellationToken = cancellationToken,
        });
    }

    /// <summary>
    /// A zero-shot image classifier: image path -> frozen image encoder (ResNet-18 by default) -> trained image projector
    /// -> cosine scores against precomputed class embeddings -> softmax. <c>Fit</c> needs only the input schema; the
    /// fitted chain is stock ML.NET transformers and saves with <c>mlContext.Model.Save</c>. Outputs
    /// <c>Score</c> float[C], a key-typed <c>PredictedLabel</c> (key values = class names, as ML.NET's multiclass
    /// trainers produce, so <c>mlContext.MulticlassClassification.Evaluate</c> works) and the class name as text.
    /// See <see cref="ZeroShotClassifierEstimator"/>.
    /// </summary>
    /// <param name="outputColumnName">Key-typed predicted label column (a Score column [C] and a text label column are
    /// added beside it).</param>
    /// <param name="inputColumnName">Image path column (Text).</param>
    /// <param name="projector">The trained, ONNX-exportable projector.</param>
    /// <param name="classes">Class names and embeddings from <see cref="ClassEmbeddingBuilder.Build"/>.</param>
    /// <exception cref="ArgumentException">See <see cref="ZeroShotClassifierEstimator"/>.</exception>
    public ZeroShotClassifierEstimator ZeroShotClassifier(string outputColumnName, string inputColumnName,
        IOnnxExportableProjector projector, ClassEmbeddings classes)
        => ZeroShotClassifier(new ZeroShotClassifierEstimator.Options
        {
            PredictedLabelColumnName = outputColumnName, ImagePathColumnName = inputColumnName, Projector = projector, Classes = classes,
        });

    /// <summary>A zero-shot image classifier with full options (see <see cref="ZeroShotClassifierEstimator.Options"/>).</summary>
    /// <param name="options">Projector, classes, columns, image encoder, logit scale.</param>
    /// <exception cref="ArgumentException">See <see cref="ZeroShotClassifierEstimator"/>.</exception>
    public ZeroShotClassifierEstimator ZeroShotClassifier(ZeroShotClassifierEstimator.Options options) => new(Context, options);
}
