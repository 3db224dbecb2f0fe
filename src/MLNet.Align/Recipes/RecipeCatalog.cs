using MLNet.Align.Projection;

namespace MLNet.Align.Recipes;

/// <summary>
/// The named recipes (<c>train --recipe NAME</c>; docs/recipes.md). "auto" is not a recipe but
/// <see cref="RecipeSelector"/> over <see cref="AutoCandidates"/>.
/// </summary>
public static class RecipeCatalog
{
    /// <summary>The name that selects <see cref="RecipeSelector"/>.</summary>
    public const string Auto = "auto";

    /// <summary>Least squares, image -> text space (ridge, lambda 0.1 relative).</summary>
    public static ClosedFormRecipe LeastSquares { get; } = new("least-squares", "ridge least squares, image features mapped into the text space (closed form)", ClosedFormKind.LeastSquares);
    /// <summary>Reverse ridge, text -> image space.</summary>
    public static ClosedFormRecipe ReverseRidge { get; } = new("reverse-ridge", "ridge least squares, text features mapped into the image space (closed form)", ClosedFormKind.ReverseRidge);
    /// <summary>Orthogonal Procrustes after centring.</summary>
    public static ClosedFormRecipe Procrustes { get; } = new("procrustes", "orthogonal Procrustes rotation of the wider side onto the narrower, after centring (closed form)", ClosedFormKind.Procrustes);
    /// <summary>ASIF relative representations (K 800, p 8).</summary>
    public static AsifRecipe Asif { get; } = new("asif", "ASIF relative representations: similarities to the training pairs as anchors, top 800 kept, power 8 (no training)");

    private static AlignmentTrainingOptions FineTune => new()
    {
        Epochs = 20, BatchSize = 256, LearningRate = 1e-4, WarmupSteps = 20, WeightDecay = 0.02, Patience = 5,
        StructureWeight = 1.0, SelectInitialModel = true,
    };

    /// <summary>Locked text: the text side keeps the text encoder's space (identity); the image side is the paper's
    /// token projector on pooled features, its linear branch initialised from least squares and its non-linear branch
    /// from zero, fine-tuned with InfoNCE plus the structure-preserving term (lr 1e-4, up to 20 epochs, patience 5).</summary>
    public static TrainedRecipe LockedText { get; } = new("locked-text",
        "text side kept (identity); image side = token projector on pooled features initialised from least squares, fine-tuned with InfoNCE + structure term",
        new ProjectorOptions { ImageGlobal = ProjectorKind.Token, TextGlobal = ProjectorKind.Identity, EmbeddingDimension = 384, Dropout = 0.1f },
        FineTune, RecipeInit.LeastSquares);

    /// <summary>Both sides trained: token projectors on both pooled features, initialised from the best closed-form map.</summary>
    public static TrainedRecipe BothSides { get; } = new("both-sides",
        "token projectors on both pooled features initialised from the best closed-form map, fine-tuned with InfoNCE + structure term",
        new ProjectorOptions { ImageGlobal = ProjectorKind.Token, TextGlobal = ProjectorKind.Token, EmbeddingDimension = 384, Dropout = 0.1f },
        FineTune, RecipeInit.BestLinear);

    /// <summary>The paper's pooled-only variant: MLP heads on both pooled features, random init, InfoNCE, lr 1e-3, 10
    /// epochs (what `train` did before recipes).</summary>
    public static TrainedRecipe PooledMlp { get; } = new("pooled-mlp", "MLP heads on both pooled features from random init, InfoNCE (the paper's pooled recipe)",
        ProjectorOptions.PooledMlp(512), new AlignmentTrainingOptions());

    /// <summary>The paper's final design: token projectors on image patch and CLS tokens and text tokens, MLP text
    /// head, width 1024 (needs a store embedded with tokens).</summary>
    public static TrainedRecipe Paper { get; } = new("paper", "the paper's token projectors (patch/CLS/text tokens, MLP text head), E 1024, InfoNCE; needs token features",
        ProjectorOptions.Paper(1024), new AlignmentTrainingOptions());

    /// <summary>Every named recipe.</summary>
    public static IReadOnlyList<AlignmentRecipe> All { get; } = [LeastSquares, ReverseRidge, Procrustes, Asif, LockedText, BothSides, PooledMlp, Paper];

    /// <summary>The names <c>train --recipe</c> takes.</summary>
    public static IEnumerable<string> Names => All.Select(r => r.Name).Prepend(Auto);

    /// <summary>The candidates "auto" fits, in order (closed forms first, so trained recipes can start from the best
    /// map): the three maps, ASIF, locked text, both sides, pooled MLP, and the paper's recipe when the data holds tokens.</summary>
    public static IReadOnlyList<AlignmentRecipe> AutoCandidates(bool dataHasTokens)
        => dataHasTokens ? All : All.Where(r => !r.NeedsTokens).ToList();

    /// <summary>The recipe called <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Unknown name (the message lists the known ones).</exception>
    public static AlignmentRecipe Get(string name)
        => All.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase))
           ?? throw new ArgumentException($"Unknown recipe '{name}'. Known: {string.Join(", ", Names)}.");
}
