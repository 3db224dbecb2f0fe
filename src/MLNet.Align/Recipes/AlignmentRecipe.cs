using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;

namespace MLNet.Align.Recipes;

/// <summary>How a recipe gets its model.</summary>
public enum RecipeKind
{
    /// <summary>A closed-form linear map (seconds; no training).</summary>
    ClosedForm,
    /// <summary>Relative representations over anchor pairs (ASIF; no training).</summary>
    Relative,
    /// <summary>Projectors trained with a contrastive loss (TorchSharp).</summary>
    Trained,
}

/// <summary>Where a trained recipe's weights start.</summary>
public enum RecipeInit
{
    /// <summary>TorchSharp's seeded random initialisation.</summary>
    Random,
    /// <summary>The least-squares map (image -> text), on LayerNorm-ed features (<see cref="ClosedFormInitializer"/>).</summary>
    LeastSquares,
    /// <summary>The best closed-form map on the validation data (chosen by <see cref="RecipeSelector"/>; least squares
    /// when the recipe is fitted alone).</summary>
    BestLinear,
}

/// <summary>
/// One way to get an aligned model from paired features: every method the library has (closed-form maps, ASIF, trained
/// projectors) is a recipe, and every recipe's result is an <see cref="AlignedModel"/> that saves as a bundle, exports
/// to ONNX and serves in an ML.NET zip alike. Recipes are data: <see cref="RecipeCatalog"/> names them.
/// </summary>
/// <param name="Name">Short name (<c>train --recipe NAME</c>), e.g. "procrustes".</param>
/// <param name="Description">One line for reports.</param>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(ClosedFormRecipe), "closed-form")]
[JsonDerivedType(typeof(AsifRecipe), "asif")]
[JsonDerivedType(typeof(TrainedRecipe), "trained")]
public abstract record AlignmentRecipe(string Name, string Description)
{
    /// <summary>How the model is obtained.</summary>
    [JsonIgnore] public abstract RecipeKind Kind { get; }
    /// <summary>True when the recipe needs token features in the data.</summary>
    [JsonIgnore] public virtual bool NeedsTokens => false;

    /// <summary>Fits the recipe on <paramref name="context"/>'s training rows.</summary>
    public abstract AlignedModel Fit(RecipeContext context);
}

/// <summary>A closed-form map: least squares (image -> text), reverse ridge (text -> image) or orthogonal Procrustes,
/// each on centred pooled features (<see cref="LeastSquaresMap"/>, <see cref="ReverseRidgeMap"/>, <see cref="ProcrustesMap"/>).</summary>
/// <param name="Name">Short name (<c>train --recipe NAME</c>).</param>
/// <param name="Description">One line for reports.</param>
/// <param name="Map">Which map.</param>
/// <param name="Lambda">Relative ridge strength of the ridge maps.</param>
public sealed record ClosedFormRecipe(string Name, string Description, ClosedFormKind Map, double Lambda = 0.1) : AlignmentRecipe(Name, Description)
{
    /// <inheritdoc/>
    public override RecipeKind Kind => RecipeKind.ClosedForm;

    /// <summary>The fitted map itself (used by the trained recipes' initialisation too).</summary>
    public LinearAlignedProjector FitMap(EmbeddingMatrix image, EmbeddingMatrix text) => Map switch
    {
        ClosedFormKind.LeastSquares => LeastSquaresMap.Fit(image, text, new LeastSquaresMap.Options { Lambda = Lambda }),
        ClosedFormKind.ReverseRidge => ReverseRidgeMap.Fit(image, text, new ReverseRidgeMap.Options { Lambda = Lambda }),
        ClosedFormKind.Procrustes => ProcrustesMap.Fit(image, text),
        _ => throw new ArgumentOutOfRangeException(nameof(Map), Map, "Unknown closed-form map."),
    };

    /// <inheritdoc/>
    public override AlignedModel Fit(RecipeContext context)
    {
        var (image, text) = context.TrainingMatrices();
        var model = AlignedModel.FromLinearMap(FitMap(image, text));
        return context.Finish(model, this);
    }
}

/// <summary>ASIF (Norelli et al., NeurIPS 2023): the training pairs are the anchors (at most <paramref name="MaxAnchors"/>,
/// a seeded sample beyond that), each modality represented by its similarities to its anchors
/// (<see cref="AlignedModel.FromAnchors"/>).</summary>
/// <param name="Name">Short name (<c>train --recipe NAME</c>).</param>
/// <param name="Description">One line for reports.</param>
/// <param name="TopK">Non-zeros kept per row (ASIF: 800).</param>
/// <param name="Power">Exponent of the kept similarities (ASIF: 8).</param>
/// <param name="MaxAnchors">Anchor cap (the shared space is this wide; memory and time grow with it).</param>
public sealed record AsifRecipe(string Name, string Description, int TopK = 800, double Power = 8, int MaxAnchors = 16384) : AlignmentRecipe(Name, Description)
{
    /// <inheritdoc/>
    public override RecipeKind Kind => RecipeKind.Relative;

    /// <inheritdoc/>
    public override AlignedModel Fit(RecipeContext context)
    {
        var (image, text) = context.TrainingMatrices();
        if (image.Rows > MaxAnchors)
        {
            var pick = Enumerable.Range(0, image.Rows).ToArray();
            new Random(context.Seed).Shuffle(pick);
            Array.Sort(pick, 0, MaxAnchors);
            var rows = pick.AsSpan(0, MaxAnchors).ToArray();
            (image, text) = (image.SelectRows(rows), text.SelectRows(rows));
        }
        return context.Finish(AlignedModel.FromAnchors(image, text, TopK, Power), this);
    }
}

/// <summary>Projectors trained with <see cref="AlignmentTrainer"/>: the architecture, the training settings and where
/// the weights start. The epoch kept is the best on the context's validation measure, and the initial model competes
/// too (<see cref="AlignmentTrainingOptions.SelectInitialModel"/>), so a trained recipe never reports a validation score
/// below its initialisation.</summary>
/// <param name="Name">Short name (<c>train --recipe NAME</c>).</param>
/// <param name="Description">One line for reports.</param>
/// <param name="Projector">Architecture.</param>
/// <param name="Training">Training settings (seed, checkpoint folder and selection metric are set by the context).</param>
/// <param name="Init">Initialisation.</param>
public sealed record TrainedRecipe(string Name, string Description, ProjectorOptions Projector, AlignmentTrainingOptions Training,
    RecipeInit Init = RecipeInit.Random) : AlignmentRecipe(Name, Description)
{
    /// <inheritdoc/>
    public override RecipeKind Kind => RecipeKind.Trained;
    /// <inheritdoc/>
    public override bool NeedsTokens => Projector.UsesImageTokens || Projector.UsesTextTokens;

    /// <summary>The training run of the last <see cref="Fit"/> is reported through <see cref="RecipeContext.LastHistory"/>.</summary>
    public override AlignedModel Fit(RecipeContext context) => context.Train(this);
}
