using System.Text.Json;
using System.Text.Json.Serialization;

namespace MLNet.Align.Projection;

/// <summary>The building block used in one projector slot (docs/method.md 3.2).</summary>
public enum ProjectorKind
{
    /// <summary>Slot unused. Image local: no token branch (pooled-only image side). Image global: no pooled/CLS
    /// branch. Text local: the text global piece reads the pooled text embedding instead of projected tokens.
    /// Text global cannot be None (use Identity).</summary>
    None,
    /// <summary>Passes features through unchanged; input width must equal the embedding dimension.</summary>
    Identity,
    /// <summary>One Linear(d_in -> E) with bias.</summary>
    Linear,
    /// <summary>Global MLP head ('mlp'): p = Linear(d_in -> E); h = Dropout(Linear(E -> E)(GELU(p))); LayerNorm(h + p).</summary>
    Mlp,
    /// <summary>Token projector ('patch'): LayerNorm(d_in) -> Dropout -> Linear(d_in -> E) + Linear(E -> E)(GELU(Linear(d_in -> E))).</summary>
    Token,
    /// <summary>Relative representation over E fixed anchors (ASIF, Norelli et al. 2023; <see cref="AnchorProjector"/>):
    /// cosine similarity of the centred input to each anchor, the top <see cref="ProjectorOptions.AnchorTopK"/> kept
    /// (negatives clipped to 0), raised to <see cref="ProjectorOptions.AnchorPower"/>. Global slots only; not trained.</summary>
    Anchors,
}

/// <summary>
/// Projector architecture (docs/method.md 3.3), one piece per slot:
/// image z = normalize( mean_i ImageLocal(t_i) + ImageGlobal(pooled) ) (either term may be off);
/// text z = normalize( TextGlobal( TextLocal is None ? pooled : masked-mean_j TextLocal(s_j) ) ).
/// For ViT encoders "pooled" is the CLS token and the tokens are the patch tokens (CLS excluded); for CNNs pooled is
/// the global-average-pooled vector and the tokens are the last feature map's H*W positions.
/// Every slot outputs <see cref="EmbeddingDimension"/> values. Serialisable as JSON.
/// </summary>
public sealed record ProjectorOptions
{
    /// <summary>Per-patch-token image projector P_loc (paper: Token). None = no token branch.</summary>
    public ProjectorKind ImageLocal { get; init; } = ProjectorKind.None;
    /// <summary>Projector of the pooled / CLS image embedding P_cls (paper: Token). None = no pooled branch.</summary>
    public ProjectorKind ImageGlobal { get; init; } = ProjectorKind.Mlp;
    /// <summary>Per-token text projector Q_loc (paper: Token). None = pooled-only text side.</summary>
    public ProjectorKind TextLocal { get; init; } = ProjectorKind.None;
    /// <summary>Global text head G after pooling (paper: Mlp). Never None.</summary>
    public ProjectorKind TextGlobal { get; init; } = ProjectorKind.Mlp;
    /// <summary>Width E of the shared space (paper: 1024).</summary>
    public int EmbeddingDimension { get; init; } = 512;
    /// <summary>Dropout probability inside Token and Mlp pieces (paper: 0.1), in [0, 1).</summary>
    public float Dropout { get; init; } = 0.1f;
    /// <summary>Non-zeros kept per row by an <see cref="ProjectorKind.Anchors"/> piece (ASIF: 800), in [1, E].</summary>
    public int AnchorTopK { get; init; } = 800;
    /// <summary>Exponent applied to the kept anchor similarities by an <see cref="ProjectorKind.Anchors"/> piece (ASIF: 8), &gt; 0.</summary>
    public double AnchorPower { get; init; } = 8;

    /// <summary>The paper's final design (patch / patch / patch / mlp) at width <paramref name="embeddingDimension"/>.</summary>
    public static ProjectorOptions Paper(int embeddingDimension = 1024) => new()
    {
        ImageLocal = ProjectorKind.Token, ImageGlobal = ProjectorKind.Token,
        TextLocal = ProjectorKind.Token, TextGlobal = ProjectorKind.Mlp, EmbeddingDimension = embeddingDimension,
    };

    /// <summary>The cheap default when only pooled embeddings are cached: MLP head on each side's pooled embedding.</summary>
    public static ProjectorOptions PooledMlp(int embeddingDimension = 512) => new() { EmbeddingDimension = embeddingDimension };

    /// <summary>True when the image side needs token features.</summary>
    [JsonIgnore] public bool UsesImageTokens => ImageLocal != ProjectorKind.None;
    /// <summary>True when the text side needs token features.</summary>
    [JsonIgnore] public bool UsesTextTokens => TextLocal != ProjectorKind.None;

    /// <summary>Largest <see cref="EmbeddingDimension"/> (see <see cref="Validate()"/>).</summary>
    public const int MaxEmbeddingDimension = 16_384;

    /// <summary>Checks the values that do not depend on the data: <see cref="EmbeddingDimension"/> in
    /// [1, <see cref="MaxEmbeddingDimension"/>], <see cref="Dropout"/> in [0, 1), known piece kinds.</summary>
    /// <exception cref="ArgumentException">A value outside its range (the message names the option, the value and the range).</exception>
    public void Validate()
    {
        if (EmbeddingDimension <= 0 || EmbeddingDimension > MaxEmbeddingDimension)
            throw new ArgumentException($"EmbeddingDimension must be in [1, {MaxEmbeddingDimension}] (an Mlp piece holds an E x E float32 matrix, 1 GiB at {MaxEmbeddingDimension}, times 4 with its gradient and AdamW state), got {EmbeddingDimension}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"Dropout must be in [0, 1), got {Dropout}.");
        foreach (var (slot, kind) in new[] { (nameof(ImageLocal), ImageLocal), (nameof(ImageGlobal), ImageGlobal), (nameof(TextLocal), TextLocal), (nameof(TextGlobal), TextGlobal) })
            if (!Enum.IsDefined(kind)) throw new ArgumentException($"{slot} must be one of {string.Join(", ", Enum.GetNames<ProjectorKind>())}, got {kind}.");
    }

    /// <summary>Checks the configuration against the encoder widths (and <see cref="Validate()"/>).</summary>
    /// <exception cref="ArgumentException">An impossible combination, naming the slot and the widths.</exception>
    public void Validate(int imageDimension, int textDimension, int? imageTokenDimension, int? textTokenDimension)
    {
        Validate();
        if (ImageLocal == ProjectorKind.None && ImageGlobal == ProjectorKind.None)
            throw new ArgumentException("ImageLocal and ImageGlobal are both None: the image side would have no input.");
        if (TextGlobal == ProjectorKind.None)
            throw new ArgumentException("TextGlobal cannot be None; use Identity to skip the global text head.");
        if (ImageLocal == ProjectorKind.Anchors || TextLocal == ProjectorKind.Anchors)
            throw new ArgumentException("Anchors pieces work on pooled features: use them as ImageGlobal/TextGlobal, not as a local (per-token) piece.");
        if ((ImageGlobal == ProjectorKind.Anchors) != (TextGlobal == ProjectorKind.Anchors) || (ImageGlobal == ProjectorKind.Anchors && ImageLocal != ProjectorKind.None))
            throw new ArgumentException($"Anchors pieces come in pairs (ImageGlobal and TextGlobal, anchor i of both sides one pair) with no local piece; got image {ImageLocal}/{ImageGlobal}, text {TextLocal}/{TextGlobal}.");
        if (ImageGlobal == ProjectorKind.Anchors && !(AnchorTopK >= 1 && AnchorTopK <= EmbeddingDimension && double.IsFinite(AnchorPower) && AnchorPower > 0))
            throw new ArgumentException($"AnchorTopK must be in [1, {EmbeddingDimension}] (the anchor count) and AnchorPower finite and > 0; got {AnchorTopK} and {AnchorPower}.");
        if (UsesImageTokens && imageTokenDimension is null)
            throw new ArgumentException($"ImageLocal = {ImageLocal} needs image token features, but the data holds pooled image embeddings only.");
        if (UsesTextTokens && textTokenDimension is null)
            throw new ArgumentException($"TextLocal = {TextLocal} needs text token features, but the data holds pooled text embeddings only.");
        CheckIdentity(nameof(ImageLocal), ImageLocal, imageTokenDimension ?? 0);
        CheckIdentity(nameof(ImageGlobal), ImageGlobal, imageDimension);
        CheckIdentity(nameof(TextLocal), TextLocal, textTokenDimension ?? 0);
        CheckIdentity(nameof(TextGlobal), TextGlobal, UsesTextTokens ? EmbeddingDimension : textDimension);
    }

    private void CheckIdentity(string slot, ProjectorKind kind, int inputWidth)
    {
        if (kind == ProjectorKind.Identity && inputWidth != EmbeddingDimension)
            throw new ArgumentException($"{slot} = Identity needs input width {EmbeddingDimension} (the embedding dimension), but its input is {inputWidth}-d.");
    }
}

/// <summary>One side of the projector pair (for freezing a side while the other trains: "flexible" alignment, swap
/// one encoder and retrain only its side).</summary>
public enum ProjectorSide
{
    /// <summary>No side.</summary>
    None,
    /// <summary>The image pieces (ImageLocal, ImageGlobal).</summary>
    Image,
    /// <summary>The text pieces (TextLocal, TextGlobal).</summary>
    Text,
}

/// <summary>Which validation quantity selects the best epoch and drives early stopping (higher is better except
/// <see cref="ValidationLoss"/>).</summary>
public enum SelectionMetric
{
    /// <summary>Mean of image->text and text->image Recall@1.</summary>
    MeanRecallAt1,
    /// <summary>Image->text Recall@1.</summary>
    ImageToTextRecallAt1,
    /// <summary>Text->image Recall@1.</summary>
    TextToImageRecallAt1,
    /// <summary>Sum of R@1, R@5, R@10 in both directions ("rsum").</summary>
    RecallSum,
    /// <summary>Symmetric InfoNCE on the validation rows (lower is better).</summary>
    ValidationLoss,
    /// <summary>The value of <see cref="AlignmentTrainer.SelectionCallback"/> (e.g. a zero-shot proxy), higher is better.</summary>
    Custom,
}

/// <summary>Training settings (docs/method.md 3.4-3.5). Defaults follow the paper where it makes sense at small scale.
/// Serialisable as JSON.</summary>
public sealed record AlignmentTrainingOptions
{
    /// <summary>Passes over the training rows.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Pairs per step; all other pairs of the batch are the InfoNCE negatives (paper: 1,800 per GPU).</summary>
    public int BatchSize { get; init; } = 256;
    /// <summary>Peak AdamW learning rate (paper: 1e-3).</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Learning rate at step 0, rising linearly to <see cref="LearningRate"/> (paper: 1e-5).</summary>
    public double WarmupStartLearningRate { get; init; } = 1e-5;
    /// <summary>Linear-warmup steps (paper: 1,000); clipped to the run's total steps.</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>Floor of the per-step cosine decay after warmup (paper: 1e-5).</summary>
    public double MinLearningRate { get; init; } = 1e-5;
    /// <summary>AdamW decoupled weight decay on weights of rank >= 2 (paper: 0.02); biases and LayerNorm excluded.</summary>
    public double WeightDecay { get; init; } = 0.02;
    /// <summary>Also decay the temperature. The paper's code does (its 0-d parameter lands in the decay group) although
    /// its stated rule excludes 1-D parameters; true reproduces the code.</summary>
    public bool DecayTemperature { get; init; } = true;
    /// <summary>Initial temperature tau (paper: 0.07); logits = z_img z_txt^T / tau.</summary>
    public double InitialTemperature { get; init; } = 0.07;
    /// <summary>Lower clamp of tau after every step (paper: 0.001).</summary>
    public double MinTemperature { get; init; } = 0.001;
    /// <summary>Upper clamp of tau after every step (paper: 0.5).</summary>
    public double MaxTemperature { get; init; } = 0.5;
    /// <summary>Clip the global gradient L2 norm to this value; null = no clipping (paper: none).</summary>
    public double? MaxGradientNorm { get; init; }
    /// <summary>Seed of weight init, shuffling, dropout and the validation split.</summary>
    public int Seed { get; init; } = 42;
    /// <summary>Weight of the structure-preserving term (after STRUCTURE, Groger et al., NeurIPS 2025): per modality,
    /// KL(P_orig || P_proj) between the softmax-normalised in-batch similarity rows of the frozen features and of the
    /// projected embeddings (self excluded), averaged over both modalities and added to the InfoNCE loss. Keeps each
    /// modality's neighbourhood structure while aligning; helps in the low-data regime. 0 = off (paper).</summary>
    public double StructureWeight { get; init; }
    /// <summary>Temperature of the similarity softmax of <see cref="StructureWeight"/> (cosine / this).</summary>
    public double StructureTemperature { get; init; } = 0.05;
    /// <summary>Divergence of the structure-preserving term: <see cref="Projection.StructureDivergence.Kl"/> (default,
    /// the original form) or <see cref="Projection.StructureDivergence.JensenShannon"/> (STRUCTURE, Groger et al.,
    /// NeurIPS 2025: JS between the softmax similarity graphs of the frozen input space and the projected space,
    /// symmetric and bounded by ln 2). Only used when <see cref="StructureWeight"/> &gt; 0.</summary>
    public StructureDivergence StructureDivergence { get; init; } = StructureDivergence.Kl;
    /// <summary>Linear warm-up of the structure weight (STRUCTURE): at 0-based global step s the term is weighted
    /// <see cref="StructureWeight"/> x min(1, (s + 1) / StructureWarmupSteps), reaching the full weight at step
    /// StructureWarmupSteps - 1 (steps counted over the whole run, not per epoch). 0 (default) = full weight from
    /// step 0. Range: &gt;= 0.</summary>
    public int StructureWarmupSteps { get; init; }
    /// <summary>Contrastive objective (default <see cref="ContrastiveLoss.InfoNce"/>). With
    /// <see cref="ContrastiveLoss.Sigmoid"/> (SigLIP, Zhai et al. 2023; SAIL, Zhang et al. 2025 for frozen encoders)
    /// the loss is -1/n sum_ij log sigmoid(z_ij (t z_img,i . z_txt,j + b)) over the n x n batch pairs, z_ij = +1 on
    /// positives and -1 elsewhere, with t = exp(t') and both t' and b learnable (initial
    /// <see cref="SigmoidInitialLogitScale"/>, <see cref="SigmoidInitialBias"/>).
    /// <para>How the temperature options apply under Sigmoid: the model's temperature tau is not a trained parameter
    /// then; after every step it is set to 1/t, so the saved model (zero-shot logit scale, validation Recall and the
    /// ValidationLoss metric, which stay symmetric InfoNCE at tau = 1/t) uses the learned scale.
    /// <see cref="InitialTemperature"/> is ignored (tau starts at 1/<see cref="SigmoidInitialLogitScale"/>);
    /// <see cref="MinTemperature"/>/<see cref="MaxTemperature"/> bound 1/t (t' is clamped after every step to
    /// [ln(1/MaxTemperature), ln(1/MinTemperature)]; defaults: t in [2, 1000]); <see cref="DecayTemperature"/> does not
    /// apply: t' and b are never weight-decayed (as in SigLIP). Both are checkpointed and a resume is bit-exact; the
    /// learned values are reported in <see cref="TrainingHistory.SigmoidLogitScale"/> and
    /// <see cref="TrainingHistory.SigmoidBias"/>.</para></summary>
    public ContrastiveLoss Loss { get; init; } = ContrastiveLoss.InfoNce;
    /// <summary>Initial logit scale t of the sigmoid loss (SigLIP and SAIL: 10 and 20; here 20, stored as t' = ln 20).
    /// Range: &gt; 0, with 1/t inside [MinTemperature, MaxTemperature]. Used only with Loss = Sigmoid.</summary>
    public double SigmoidInitialLogitScale { get; init; } = 20;
    /// <summary>Initial bias b of the sigmoid loss (SigLIP: -10, so that the loss starts near its value for the
    /// ~n^2 negatives instead of the n positives). Range: finite. Used only with Loss = Sigmoid.</summary>
    public double SigmoidInitialBias { get; init; } = -10;
    /// <summary>Count every row of the same positive group in a batch as a positive (SupCon, Khosla et al. 2020;
    /// UniCLIP, Lee et al. 2022; SAIL trains on several captions per image): the groups come from
    /// <see cref="IAlignmentDataSource.GroupIds"/> (the embedding store joins rows that share an image or a
    /// caption text). InfoNCE targets become uniform over the positives of each row (and of each column for
    /// text->image); the sigmoid loss gets z = +1 on every positive. A batch without repeated groups computes exactly
    /// the single-positive loss. Training fails with <see cref="ArgumentException"/> when the source has no groups.
    /// Default false (the paper: one positive per row).</summary>
    public bool MultiPositive { get; init; }
    /// <summary>Latent mixup on the cached pooled features (FuseMix, Vouitsis et al., CVPR 2024): Beta(alpha, alpha)
    /// concentration of the mixing coefficient lambda, one lambda and one permutation per batch, the same on the image
    /// and text side, applied to the input features before the projectors (the mixed pair replaces the batch; the
    /// structure term then compares the mixed inputs with their projections). Draws are seeded from
    /// (<see cref="Seed"/>, global step), so runs and resumes are deterministic. 0 (default) = off; &gt; 0 (FuseMix:
    /// 1). Needs pooled-only projectors (no token pieces).</summary>
    public double MixupAlpha { get; init; }
    /// <summary>Chance that a batch is mixed when <see cref="MixupAlpha"/> &gt; 0, in [0, 1] (default 1: every batch).</summary>
    public double MixupProbability { get; init; } = 1;
    /// <summary>L2 pull of every projector weight toward its value at the start of training (L2-SP), times
    /// sum ||w - w0||^2. Useful with an initialiser (e.g. a closed-form linear map); 0 = off.</summary>
    public double AnchorWeight { get; init; }
    /// <summary>Score the model before the first step too (epoch -1 in the history), so a selection metric can keep
    /// the initial weights when training never beats them (meaningful with an initialiser).</summary>
    public bool SelectInitialModel { get; init; }
    /// <summary>Fraction of rows held out for validation when no explicit rows are given; 0 = no validation.</summary>
    public double ValidationFraction { get; init; } = 0.1;
    /// <summary>Cap on rows drawn for validation by <see cref="ValidationFraction"/> (Recall needs an n x n
    /// similarity matrix).</summary>
    public int MaxValidationRows { get; init; } = 5000;
    /// <summary>Epoch-level selection quantity (best weights, early stopping).</summary>
    public SelectionMetric Metric { get; init; } = SelectionMetric.MeanRecallAt1;
    /// <summary>Stop after this many epochs without improvement; null = never stop early.</summary>
    public int? Patience { get; init; }
    /// <summary>Restore the weights of the best epoch at the end (when a selection metric exists).</summary>
    public bool RestoreBestWeights { get; init; } = true;
    /// <summary>Drop the last partial batch of an epoch when at least one full batch exists.</summary>
    public bool DropLastPartialBatch { get; init; } = true;
    /// <summary>Directory for the resumable checkpoint (checkpoint.bin); null = no checkpoints.</summary>
    public string? CheckpointDirectory { get; init; }
    /// <summary>Also checkpoint every N steps (epoch ends always checkpoint); 0 = epoch ends only.</summary>
    public int CheckpointEverySteps { get; init; }
    /// <summary>On cancellation write a checkpoint of the last completed step before throwing.</summary>
    public bool CheckpointOnCancel { get; init; } = true;
    /// <summary>Sets torch's intra-op thread count for the process (1 = bit-reproducible); null leaves it alone.</summary>
    public int? TorchThreads { get; init; }
    /// <summary>Side whose projector weights are not trained (no gradient, not in the optimizer, dropout off): e.g.
    /// <see cref="ProjectorSide.Image"/> with <see cref="AlignmentTrainer.InitFrom"/> = a model trained with the same
    /// image encoder, to align a new text encoder to the existing image space. The temperature always trains.</summary>
    public ProjectorSide Freeze { get; init; } = ProjectorSide.None;
    /// <summary>TorchSharp device of the training run: "cpu" (default), "cuda" or "cuda:N". A runtime setting, never
    /// serialised (not in bundles, checkpoints or the resume key). CUDA needs a TorchSharp CUDA backend (build with
    /// <c>-p:TorchCuda=true</c>) and a device; otherwise training fails with a clear error.</summary>
    [JsonIgnore] public string Device { get; init; } = "cpu";

    /// <summary>Parses <see cref="Device"/>: (isCuda, index).</summary>
    /// <exception cref="ArgumentException">Not "cpu", "cuda" or "cuda:N" with N >= 0.</exception>
    public static (bool Cuda, int Index) ParseDevice(string? device)
    {
        var d = (device ?? "cpu").Trim().ToLowerInvariant();
        if (d == "cpu") return (false, 0);
        if (d == "cuda") return (true, 0);
        if (d.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(d.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i))
            return (true, i);
        throw new ArgumentException($"Device must be 'cpu', 'cuda' or 'cuda:N' (N >= 0), got '{device}'.");
    }

    /// <summary>Largest <see cref="BatchSize"/>: a step holds several n x n float32 matrices (logits, softmax,
    /// gradients), 4 GiB each at this size.</summary>
    public const int MaxBatchSize = 32_768;
    /// <summary>Largest <see cref="MaxValidationRows"/>: validation computes one n x n similarity matrix (4 GiB at this size).</summary>
    public const int MaxValidationRowsLimit = 32_768;
    /// <summary>Largest <see cref="TorchThreads"/>.</summary>
    public const int MaxTorchThreads = 1_024;

    /// <summary>Checks every value against its range; NaN and infinities are refused wherever a finite value is meant
    /// (they would train a NaN model).</summary>
    /// <exception cref="ArgumentException">A value outside its range; the message names the option, the value and the
    /// allowed range.</exception>
    public void Validate()
    {
        if (Epochs <= 0) throw new ArgumentException($"Epochs must be positive, got {Epochs}.");
        if (BatchSize < 2) throw new ArgumentException($"BatchSize must be at least 2 (InfoNCE needs negatives), got {BatchSize}.");
        if (BatchSize > MaxBatchSize)
            throw new ArgumentException($"BatchSize must be in [2, {MaxBatchSize}] (a step holds several n x n float32 matrices, 4 GiB each at {MaxBatchSize}), got {BatchSize}.");
        Rate(nameof(LearningRate), LearningRate, zeroAllowed: false);
        Rate(nameof(WarmupStartLearningRate), WarmupStartLearningRate, zeroAllowed: true);
        Rate(nameof(MinLearningRate), MinLearningRate, zeroAllowed: true);
        if (WarmupSteps < 0) throw new ArgumentException($"WarmupSteps must be >= 0, got {WarmupSteps}.");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new ArgumentException($"WeightDecay must be finite and >= 0, got {WeightDecay}.");
        if (!(MinTemperature > 0 && MinTemperature <= InitialTemperature && InitialTemperature <= MaxTemperature) || double.IsInfinity(MaxTemperature))
            throw new ArgumentException($"Temperatures must satisfy 0 < min <= initial <= max < infinity, got {MinTemperature}, {InitialTemperature}, {MaxTemperature}.");
        if (!(ValidationFraction >= 0 && ValidationFraction < 1)) throw new ArgumentException($"ValidationFraction must be in [0, 1), got {ValidationFraction}.");
        if (MaxValidationRows < 0 || MaxValidationRows > MaxValidationRowsLimit)
            throw new ArgumentException($"MaxValidationRows must be in [0, {MaxValidationRowsLimit}] (validation holds an n x n float32 similarity matrix, 4 GiB at {MaxValidationRowsLimit}), got {MaxValidationRows}.");
        if (Patience is <= 0) throw new ArgumentException($"Patience must be positive or null, got {Patience}.");
        if (CheckpointEverySteps < 0) throw new ArgumentException($"CheckpointEverySteps must be >= 0, got {CheckpointEverySteps}.");
        // Negated comparisons so that NaN is rejected too (NaN weights silently switched the terms off).
        if (!(StructureWeight >= 0) || !(AnchorWeight >= 0) || double.IsInfinity(StructureWeight) || double.IsInfinity(AnchorWeight))
            throw new ArgumentException($"StructureWeight and AnchorWeight must be finite and >= 0, got {StructureWeight} and {AnchorWeight}.");
        if (!(StructureTemperature > 0) || double.IsInfinity(StructureTemperature)) throw new ArgumentException($"StructureTemperature must be positive and finite, got {StructureTemperature}.");
        if (StructureWarmupSteps < 0) throw new ArgumentException($"StructureWarmupSteps must be >= 0, got {StructureWarmupSteps}.");
        if (!Enum.IsDefined(StructureDivergence)) throw new ArgumentException($"StructureDivergence must be Kl or JensenShannon, got {StructureDivergence}.");
        if (!Enum.IsDefined(Loss)) throw new ArgumentException($"Loss must be InfoNce or Sigmoid, got {Loss}.");
        if (!(SigmoidInitialLogitScale > 0) || double.IsInfinity(SigmoidInitialLogitScale))
            throw new ArgumentException($"SigmoidInitialLogitScale must be positive and finite, got {SigmoidInitialLogitScale}.");
        if (!double.IsFinite(SigmoidInitialBias)) throw new ArgumentException($"SigmoidInitialBias must be finite, got {SigmoidInitialBias}.");
        if (Loss == ContrastiveLoss.Sigmoid && !(1 / SigmoidInitialLogitScale >= MinTemperature && 1 / SigmoidInitialLogitScale <= MaxTemperature))
            throw new ArgumentException($"SigmoidInitialLogitScale {SigmoidInitialLogitScale} gives temperature 1/t = {1 / SigmoidInitialLogitScale}, outside [MinTemperature, MaxTemperature] = [{MinTemperature}, {MaxTemperature}].");
        if (!(MixupAlpha >= 0) || double.IsInfinity(MixupAlpha)) throw new ArgumentException($"MixupAlpha must be >= 0 and finite (0 = off), got {MixupAlpha}.");
        if (!(MixupProbability >= 0 && MixupProbability <= 1)) throw new ArgumentException($"MixupProbability must be in [0, 1], got {MixupProbability}.");
        if (MaxGradientNorm is double g && !(g > 0 && double.IsFinite(g)))
            throw new ArgumentException($"MaxGradientNorm must be positive and finite, or null for no clipping, got {g}.");
        if (TorchThreads is int t && (t < 1 || t > MaxTorchThreads))
            throw new ArgumentException($"TorchThreads must be in [1, {MaxTorchThreads}] or null (leave torch's setting alone), got {t}.");
        ParseDevice(Device);
    }

    private static void Rate(string name, double value, bool zeroAllowed)
    {
        if (double.IsFinite(value) && (zeroAllowed ? value >= 0 : value > 0)) return;
        throw new ArgumentException($"{name} must be {(zeroAllowed ? ">= 0" : "positive")} and finite, got {value}.");
    }
}

/// <summary>Everything that defines an alignment run: architecture plus training settings. JSON round-trips via
/// <see cref="ToJson"/> / <see cref="FromJson"/>.</summary>
public sealed record AlignmentOptions
{
    /// <summary>The projector architecture (docs/method.md section 3.3); defaults to <see cref="ProjectorOptions"/>'s defaults.</summary>
    public ProjectorOptions Projector { get; init; } = new();
    /// <summary>The training settings (docs/method.md sections 3.4-3.5); defaults to <see cref="AlignmentTrainingOptions"/>'s defaults.</summary>
    public AlignmentTrainingOptions Training { get; init; } = new();

    /// <summary>Indented JSON, enums as strings.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, AlignmentJson.Options);

    /// <summary>Checks the projector's and the training settings' ranges (<see cref="ProjectorOptions.Validate()"/>,
    /// <see cref="AlignmentTrainingOptions.Validate"/>).</summary>
    /// <exception cref="ArgumentException">A value outside its range, named.</exception>
    public void Validate()
    {
        Projector.Validate();
        Training.Validate();
    }

    /// <summary>Parses JSON written by <see cref="ToJson"/> (missing members keep their defaults; keys match
    /// case-insensitively). A key that names no option, e.g. a misspelt one, is an error rather than silently
    /// ignored: the run would otherwise use the default of the option meant.</summary>
    /// <exception cref="JsonException">Malformed JSON, a null section, or an unknown key (the message names it, its
    /// section and the known keys of that section).</exception>
    public static AlignmentOptions FromJson(string json)
    {
        var options = JsonSerializer.Deserialize<AlignmentOptions>(json, AlignmentJson.Options) ?? throw new JsonException("The alignment options JSON is null.");
        using var doc = JsonDocument.Parse(json);
        CheckKeys(doc.RootElement, typeof(AlignmentOptions), "");
        if (options.Projector is null || options.Training is null) throw new JsonException("The alignment options JSON sets Projector or Training to null; leave the key out for the defaults.");
        return options;
    }

    private static void CheckKeys(JsonElement element, Type type, string path)
    {
        if (element.ValueKind != JsonValueKind.Object) return;
        var known = type.GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
            .Where(p => p.CanWrite && !p.IsDefined(typeof(JsonIgnoreAttribute), true)).ToArray();
        foreach (var member in element.EnumerateObject())
        {
            var prop = known.FirstOrDefault(p => string.Equals(p.Name, member.Name, StringComparison.OrdinalIgnoreCase));
            string at = path.Length == 0 ? member.Name : $"{path}.{member.Name}";
            if (prop is null)
            {
                var closest = known.Select(p => p.Name).MinBy(n => EditDistance(n.ToLowerInvariant(), member.Name.ToLowerInvariant()))!;
                string hint = EditDistance(closest.ToLowerInvariant(), member.Name.ToLowerInvariant()) <= Math.Max(2, member.Name.Length / 3) ? $" (did you mean '{closest}'?)" : "";
                throw new JsonException($"unknown key '{at}'{hint}; the known keys of {(path.Length == 0 ? "the top level" : path)} are {string.Join(", ", known.Select(p => p.Name))}.");
            }
            if (prop.PropertyType == typeof(ProjectorOptions) || prop.PropertyType == typeof(AlignmentTrainingOptions))
                CheckKeys(member.Value, prop.PropertyType, at);
        }
    }

    private static int EditDistance(string a, string b)
    {
        var d = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) d[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int diag = d[0]; d[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int up = d[j];
                d[j] = Math.Min(Math.Min(d[j] + 1, d[j - 1] + 1), diag + (a[i - 1] == b[j - 1] ? 0 : 1));
                diag = up;
            }
        }
        return d[b.Length];
    }
}

/// <summary>Shared JSON settings for options, bundles and training logs.</summary>
internal static class AlignmentJson
{
    /// <summary>Indented, camelCase-insensitive on read, enums as strings, NaN allowed.</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNameCaseInsensitive = true,
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
