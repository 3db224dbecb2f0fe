using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// The contrastive loss of a training run as an object (open_clip's loss modules, sentence-transformers' loss
/// classes): it owns its learnable parameters and their optimiser group, its checkpoint state, and what it does to the
/// network's temperature. A new loss is one class implementing this plus one entry in
/// <see cref="ContrastiveObjectives.Create"/> (and its <see cref="ContrastiveLoss"/> value).
/// </summary>
internal interface IContrastiveObjective : IDisposable
{
    /// <summary>tau the model is built with.</summary>
    double InitialTemperature { get; }
    /// <summary>True when the network's temperature is an optimiser parameter; false when the objective sets it.</summary>
    bool OptimizesTemperature { get; }
    /// <summary>The objective's own parameters as optimiser groups (parameters, weight decay), after the network's.</summary>
    IReadOnlyList<(IReadOnlyList<Parameter> Parameters, double WeightDecay)> ParameterGroups { get; }
    /// <summary>The loss of one batch: z_img, z_txt [n, E] unit rows; <paramref name="positives"/> [n, n] bool or null
    /// for the diagonal; <paramref name="temperature"/> the network's 0-d tau.</summary>
    Tensor Loss(Tensor zImage, Tensor zText, Tensor temperature, Tensor? positives);
    /// <summary>After every optimiser step: clamps the objective's scale and keeps <paramref name="temperature"/> in range.</summary>
    void AfterStep(Tensor temperature);
    /// <summary>Appends the objective's state to a checkpoint (nothing when it has none).</summary>
    void WriteState(BinaryWriter writer);
    /// <summary>Restores what <see cref="WriteState"/> wrote.</summary>
    /// <exception cref="InvalidDataException">Malformed state; the message starts with <paramref name="what"/>.</exception>
    void ReadState(BinaryReader reader, string what);
    /// <summary>Suffix of the epoch log line (e.g. ", sigmoid bias 0.123"), or "".</summary>
    string Describe();
    /// <summary>Records the learned values in the history at the end of a run.</summary>
    void Record(TrainingHistory history);
}

/// <summary>Builds the <see cref="IContrastiveObjective"/> of <see cref="AlignmentTrainingOptions.Loss"/>.</summary>
internal static class ContrastiveObjectives
{
    public static IContrastiveObjective Create(AlignmentTrainingOptions o, Device device) => o.Loss switch
    {
        ContrastiveLoss.InfoNce => new InfoNceObjective(o),
        ContrastiveLoss.Sigmoid => new SigmoidObjective(o, device),
        _ => throw new ArgumentOutOfRangeException(nameof(o), o.Loss, "Unknown contrastive loss."),
    };
}

/// <summary>Symmetric InfoNCE on logits = z_img z_txt^T / tau (multi-positive targets with a mask); tau is a network
/// parameter trained by the optimiser and clamped to [MinTemperature, MaxTemperature] after every step.</summary>
internal sealed class InfoNceObjective(AlignmentTrainingOptions o) : IContrastiveObjective
{
    public double InitialTemperature => o.InitialTemperature;
    public bool OptimizesTemperature => true;
    public IReadOnlyList<(IReadOnlyList<Parameter> Parameters, double WeightDecay)> ParameterGroups => [];

    // Number operands go through TorchScalars (GC-safe scalars); see its remarks for the crash this avoids.
    public Tensor Loss(Tensor zImage, Tensor zText, Tensor temperature, Tensor? positives)
        => ContrastiveLosses.InfoNce(zImage.matmul(zText.t()) / temperature, positives);

    public void AfterStep(Tensor temperature)
    {
        using (no_grad()) TorchScalars.ClampInPlace(temperature, (float)o.MinTemperature, (float)o.MaxTemperature);
    }

    public void WriteState(BinaryWriter writer) { }
    public void ReadState(BinaryReader reader, string what) { }
    public string Describe() => "";
    public void Record(TrainingHistory history) { }
    public void Dispose() { }
}

/// <summary>
/// The pairwise sigmoid loss (SigLIP) with its learnable log logit scale t' and bias b (0-d float32 parameters, in their
/// own optimiser group, never decayed). Not part of the saved model (serving needs neither): the network's tau is set
/// to 1/t = exp(-t') after every step. Checkpointed as the raw float bits of (t', b).
/// </summary>
internal sealed class SigmoidObjective : IContrastiveObjective
{
    private readonly AlignmentTrainingOptions _o;

    public SigmoidObjective(AlignmentTrainingOptions o, Device device)
    {
        _o = o;
        LogScale = new Parameter(tensor((float)Math.Log(o.SigmoidInitialLogitScale), device: device));
        Bias = new Parameter(tensor((float)o.SigmoidInitialBias, device: device));
    }

    /// <summary>t' (t = exp t').</summary>
    public Parameter LogScale { get; }
    /// <summary>b.</summary>
    public Parameter Bias { get; }

    public double InitialTemperature => 1 / _o.SigmoidInitialLogitScale;
    // tau = 1/t follows the sigmoid loss's scale, not the optimiser.
    public bool OptimizesTemperature => false;
    public IReadOnlyList<(IReadOnlyList<Parameter> Parameters, double WeightDecay)> ParameterGroups => [([LogScale, Bias], 0)];

    public Tensor Loss(Tensor zImage, Tensor zText, Tensor temperature, Tensor? positives)
        => ContrastiveLosses.Sigmoid(zImage.matmul(zText.t()), LogScale, Bias, positives);

    /// <summary>Clamps t' to [ln(1/MaxTemperature), ln(1/MinTemperature)] and sets tau to 1/t = exp(-t') (no gradient).</summary>
    public void AfterStep(Tensor temperature)
    {
        using var noGrad = no_grad();
        TorchScalars.ClampInPlace(LogScale, (float)Math.Log(1 / _o.MaxTemperature), (float)Math.Log(1 / _o.MinTemperature));
        using var tau = LogScale.neg().exp();
        temperature.copy_(tau);
    }

    /// <summary>(t', b) as float32 values.</summary>
    public (float LogScale, float Bias) Values => (LogScale.cpu().item<float>(), Bias.cpu().item<float>());

    /// <summary>A blob of 8 bytes: t' then b, float32 little-endian.</summary>
    public void WriteState(BinaryWriter writer)
    {
        var (s, b) = Values;
        var bytes = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(0), s);
        System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4), b);
        TrainingCheckpoint.WriteBlob(writer, bytes);
    }

    public void ReadState(BinaryReader reader, string what)
    {
        var bytes = TrainingCheckpoint.ReadBlob(reader);
        if (bytes.Length != 8) throw new InvalidDataException($"{what}: sigmoid loss parameters hold {bytes.Length} bytes, expected 8 (log scale, bias).");
        using var noGrad = no_grad();
        using var s = tensor(System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(0)), device: LogScale.device);
        using var b = tensor(System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(4)), device: Bias.device);
        LogScale.copy_(s);
        Bias.copy_(b);
    }

    public string Describe() => $", sigmoid bias {Values.Bias:F3}";

    public void Record(TrainingHistory history)
    {
        var (logScale, bias) = Values;
        history.SigmoidLogitScale = Math.Exp(logScale);
        history.SigmoidBias = bias;
    }

    public void Dispose() { LogScale.Dispose(); Bias.Dispose(); }
}
