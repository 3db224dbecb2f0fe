using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// AdamW (Loshchilov and Hutter, decoupled weight decay) with the exact update order and arithmetic of TorchSharp
/// 0.107's <c>torch.optim.AdamW</c> (amsgrad off, maximize off), so trajectories are bit-identical to it, but with
/// every number operand held in a <see cref="Scalar"/> that stays reachable until its native op returns. TorchSharp's
/// own AdamW creates ~8 implicit scalars per parameter per step and loses them to the finalizer mid-op under GC
/// pressure (see <see cref="TorchScalars"/>; reproduced by the GC stress test). Per parameter and step t:
/// p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
/// </summary>
internal sealed class ScalarSafeAdamW : IDisposable
{
    private sealed class Slot(Parameter parameter)
    {
        public Parameter Parameter { get; } = parameter;
        public long Step;
        public Tensor ExpAvg = zeros_like(parameter).DetachFromDisposeScope();
        public Tensor ExpAvgSq = zeros_like(parameter).DetachFromDisposeScope();
    }

    /// <summary>A parameter group: its parameters, decoupled weight decay and current learning rate.</summary>
    public sealed class Group
    {
        internal Group(IReadOnlyList<Parameter> parameters, double weightDecay, double learningRate)
        { Parameters = parameters; WeightDecay = weightDecay; LearningRate = learningRate; }
        /// <summary>The group's parameters.</summary>
        public IReadOnlyList<Parameter> Parameters { get; }
        /// <summary>Decoupled weight decay.</summary>
        public double WeightDecay { get; }
        /// <summary>Learning rate of the next step.</summary>
        public double LearningRate { get; set; }
    }

    private readonly double _beta1, _beta2, _eps;
    private readonly List<(Group Group, List<Slot> Slots)> _groups = new();

    public ScalarSafeAdamW(IEnumerable<(IReadOnlyList<Parameter> Parameters, double WeightDecay)> groups, double learningRate,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        _beta1 = beta1; _beta2 = beta2; _eps = eps;
        foreach (var (ps, wd) in groups)
            _groups.Add((new Group(ps, wd, learningRate), ps.Select(p => new Slot(p)).ToList()));
    }

    /// <summary>The parameter groups, in construction order.</summary>
    public IEnumerable<Group> Groups => _groups.Select(g => g.Group);

    /// <summary>Zeroes every gradient in place.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, slots) in _groups)
            foreach (var s in slots)
            {
                using var g = s.Parameter.grad;
                g?.zero_();
            }
    }

    /// <summary>One update of every parameter that has a gradient.</summary>
    public void Step()
    {
        using var noGrad = no_grad();
        using var b1 = _beta1.ToScalar();
        using var oneMinusB1 = (1 - _beta1).ToScalar();
        using var b2 = _beta2.ToScalar();
        using var oneMinusB2 = (1 - _beta2).ToScalar();
        using var eps = _eps.ToScalar();
        foreach (var (group, slots) in _groups)
        {
            double lr = group.LearningRate;
            using var decay = (1 - lr * group.WeightDecay).ToScalar();
            foreach (var s in slots)
            {
                using var grad = s.Parameter.grad;
                if (grad is null) continue;
                s.Step += 1;
                s.Parameter.mul_(decay);
                double biasCorrection1 = 1 - Math.Pow(_beta1, s.Step);
                double biasCorrection2 = 1 - Math.Pow(_beta2, s.Step);
                s.ExpAvg.mul_(b1);
                s.ExpAvg.add_(grad, oneMinusB1);
                s.ExpAvgSq.mul_(b2);
                s.ExpAvgSq.addcmul_(grad, grad, oneMinusB2);
                using var sqrtV = s.ExpAvgSq.sqrt();
                using var c2 = Math.Sqrt(biasCorrection2).ToScalar();
                using var denom = sqrtV.div(c2);
                denom.add_(eps, TorchScalars.One); // add_(scalar) alone creates an implicit alpha
                using var stepSize = (-(lr / biasCorrection1)).ToScalar();
                s.Parameter.addcdiv_(s.ExpAvg, denom, stepSize);
            }
        }
    }

    /// <summary>Writes step counts and moment estimates (float32, parameter order).</summary>
    public void Save(BinaryWriter w)
    {
        foreach (var (_, slots) in _groups)
        {
            w.Write(slots.Count);
            foreach (var s in slots)
            {
                w.Write(s.Step);
                WriteFloats(w, s.ExpAvg);
                WriteFloats(w, s.ExpAvgSq);
            }
        }
    }

    /// <summary>Reads what <see cref="Save"/> wrote for the same parameters.</summary>
    /// <exception cref="InvalidDataException">The state is for other parameters (counts or sizes differ).</exception>
    public void Load(BinaryReader r)
    {
        foreach (var (_, slots) in _groups)
        {
            int n = r.ReadInt32();
            if (n != slots.Count) throw new InvalidDataException($"optimizer state holds {n} parameters in a group, expected {slots.Count}");
            foreach (var s in slots)
            {
                s.Step = r.ReadInt64();
                ReadFloats(r, s.ExpAvg);
                ReadFloats(r, s.ExpAvgSq);
            }
        }
    }

    private static void WriteFloats(BinaryWriter w, Tensor t)
    {
        var data = t.data<float>().ToArray();
        w.Write(data.Length);
        foreach (var v in data) w.Write(v);
    }

    private static void ReadFloats(BinaryReader r, Tensor t)
    {
        int n = r.ReadInt32();
        if (n != t.numel()) throw new InvalidDataException($"optimizer state tensor has {n} values, expected {t.numel()}");
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = r.ReadSingle();
        using var src = tensor(data, t.shape);
        using var noGrad = no_grad();
        t.copy_(src);
    }

    public void Dispose()
    {
        foreach (var (_, slots) in _groups)
            foreach (var s in slots) { s.ExpAvg.Dispose(); s.ExpAvgSq.Dispose(); }
    }
}
