using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;

namespace MLNet.Align.Recipes;

/// <summary>
/// What a recipe fits on: the data source and its training rows, the validation data that picks epochs (trained
/// recipes) and models (<see cref="RecipeSelector"/>), the encoders to record in the bundle, a seed, and a log.
/// Training matrices are loaded once and shared by every closed-form recipe.
/// </summary>
public sealed class RecipeContext
{
    private (EmbeddingMatrix Image, EmbeddingMatrix Text)? _matrices;

    /// <summary>A context over <paramref name="data"/>.</summary>
    /// <param name="data">All pairs.</param>
    /// <param name="trainRows">Rows of <paramref name="data"/> to fit on: every row not in <paramref name="heldOutRows"/>.</param>
    /// <param name="heldOutRows">Rows of <paramref name="data"/> held out as validation (empty when the validation set
    /// comes from elsewhere); trained recipes never train on them.</param>
    /// <param name="validation">Validation features that choose epochs and models, or null (trained recipes then keep
    /// their last epoch, closed-form recipes are fitted as they are).</param>
    public RecipeContext(IAlignmentDataSource data, IReadOnlyList<long> trainRows, IReadOnlyList<long> heldOutRows, ValidationSet? validation)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(trainRows);
        if (trainRows.Count < 2) throw new ArgumentException($"Fitting needs at least 2 training pairs, got {trainRows.Count}.", nameof(trainRows));
        // Trained recipes train on every row that is not held out, so the two lists must cover the data.
        if (trainRows.Count + (heldOutRows?.Count ?? 0) != data.Count)
            throw new ArgumentException($"Training rows ({trainRows.Count}) and held-out rows ({heldOutRows?.Count ?? 0}) must partition the data ({data.Count} rows); fit a subset through a subset source.");
        Data = data; TrainRows = trainRows; HeldOutRows = heldOutRows ?? []; Validation = validation;
        // The data source knows its encoders (a store's manifest records them): the bundle gets them without the
        // caller typing them.
        ImageEncoder = data.ImageEncoder; TextEncoder = data.TextEncoder;
        ImageEncoderSource = data.ImageEncoderSource; TextEncoderSource = data.TextEncoderSource;
    }

    /// <summary>A context that fits on every row of <paramref name="data"/> with no validation data.</summary>
    public static RecipeContext AllRows(IAlignmentDataSource data)
        => new(data, Enumerable.Range(0, checked((int)data.Count)).Select(i => (long)i).ToArray(), [], null);

    /// <summary>All pairs.</summary>
    public IAlignmentDataSource Data { get; }
    /// <summary>Rows fitted on.</summary>
    public IReadOnlyList<long> TrainRows { get; }
    /// <summary>Rows of <see cref="Data"/> held out for validation (never trained on).</summary>
    public IReadOnlyList<long> HeldOutRows { get; }
    /// <summary>The validation set, or null.</summary>
    public ValidationSet? Validation { get; }
    /// <summary>Seed of every random choice (weights, batches, anchor sample).</summary>
    public int Seed { get; init; } = 42;
    /// <summary>Image encoder recorded in the bundle (default: the store's, when <see cref="Data"/> is an embedding store).</summary>
    public EncoderIdentity? ImageEncoder { get; init; }
    /// <summary>Text encoder recorded in the bundle.</summary>
    public EncoderIdentity? TextEncoder { get; init; }
    /// <summary>How to reopen the image encoder, recorded in the bundle.</summary>
    public EncoderSource? ImageEncoderSource { get; init; }
    /// <summary>How to reopen the text encoder, recorded in the bundle.</summary>
    public EncoderSource? TextEncoderSource { get; init; }
    /// <summary>Training progress of trained recipes.</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Log lines (epochs, choices).</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Checked between steps and candidates.</summary>
    public CancellationToken CancellationToken { get; init; }
    /// <summary>Overrides applied to every trained recipe's settings (e.g. epochs, batch size, learning rate from the
    /// command line), or null.</summary>
    public Func<AlignmentTrainingOptions, AlignmentTrainingOptions>? TrainingOverrides { get; init; }
    /// <summary>The closed-form map a <see cref="RecipeInit.BestLinear"/> recipe starts from (set by
    /// <see cref="RecipeSelector"/> after scoring the maps; least squares when null).</summary>
    public ClosedFormKind? BestLinear { get; set; }
    /// <summary>Ridge strength of the best linear map.</summary>
    public double BestLinearLambda { get; set; } = 0.1;
    /// <summary>The training history of the last trained recipe fitted in this context.</summary>
    public TrainingHistory? LastHistory { get; private set; }

    /// <summary>Pooled features of the training rows, loaded once ([n, image dim], [n, text dim]).</summary>
    public (EmbeddingMatrix Image, EmbeddingMatrix Text) TrainingMatrices()
    {
        if (_matrices is { } m) return m;
        var images = new List<EmbeddingMatrix>();
        var texts = new List<EmbeddingMatrix>();
        foreach (var b in Data.GetBatches(4096, TrainRows, cancellationToken: CancellationToken))
        {
            images.Add(b.ImagePooled);
            texts.Add(b.TextPooled);
        }
        var result = (EmbeddingMatrix.Concat(images), EmbeddingMatrix.Concat(texts));
        ValidationMeasure.RequireFinite(result.Item1, "training data", "image feature");
        ValidationMeasure.RequireFinite(result.Item2, "training data", "text feature");
        _matrices = result;
        return result;
    }

    /// <summary>Names the model after the recipe and records the encoders.</summary>
    public AlignedModel Finish(AlignedModel model, AlignmentRecipe recipe)
    {
        model.Name = recipe.Name;
        model.ImageEncoder = ImageEncoder; model.TextEncoder = TextEncoder;
        model.ImageEncoderSource = ImageEncoderSource; model.TextEncoderSource = TextEncoderSource;
        return model;
    }

    /// <summary>Trains <paramref name="recipe"/> (see <see cref="TrainedRecipe"/>).</summary>
    internal AlignedModel Train(TrainedRecipe recipe)
    {
        var training = recipe.Training with { Seed = Seed };
        if (TrainingOverrides != null) training = TrainingOverrides(training);
        var projector = recipe.Projector;
        Action<AlignedModel>? init = null;
        if (recipe.Init != RecipeInit.Random)
        {
            var kind = recipe.Init == RecipeInit.LeastSquares ? ClosedFormKind.LeastSquares : BestLinear ?? ClosedFormKind.LeastSquares;
            // A kept (identity) text side only fits the least-squares map, which leaves text as it is.
            if (projector.TextGlobal == ProjectorKind.Identity) kind = ClosedFormKind.LeastSquares;
            var (image, text) = TrainingMatrices();
            int width = kind switch
            {
                ClosedFormKind.LeastSquares => text.Columns,
                ClosedFormKind.ReverseRidge => image.Columns,
                _ => Math.Min(image.Columns, text.Columns),
            };
            projector = projector with { EmbeddingDimension = width };
            init = ClosedFormInitializer.Create(kind, image, text, kind == BestLinear ? BestLinearLambda : 0.1);
            training = training with { SelectInitialModel = true };
            Log?.Invoke($"{recipe.Name}: starts from the {kind} map (E = {width})");
        }
        if (Validation != null) training = training with { Metric = SelectionMetric.Custom, SelectInitialModel = training.SelectInitialModel || init != null };
        var trainer = new AlignmentTrainer(new AlignmentOptions { Projector = projector, Training = training })
        {
            SelectionCallback = Validation is { } v ? p => ValidationMeasure.Evaluate(p, v).Score : null,
            Initializer = init,
            ImageEncoder = ImageEncoder, TextEncoder = TextEncoder,
            ImageEncoderSource = ImageEncoderSource, TextEncoderSource = TextEncoderSource,
            Progress = Progress, Log = Log,
        };
        // The held-out rows are the trainer's validation rows, so it never trains on them; with an outside validation
        // set every row trains (an empty list, not null, which would hold out a fraction again).
        var result = trainer.Fit(Data, HeldOutRows.Count > 0 ? HeldOutRows : (Validation != null ? [] : null), CancellationToken);
        LastHistory = result.History;
        return Finish(result.Model, recipe);
    }
}
