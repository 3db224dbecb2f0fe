using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Align.Projection;

/// <summary>Token projector ('patch', docs/method.md 3.2): LayerNorm(d_in) -> Dropout(p) -> Linear(d_in->E) +
/// Linear(E->E)(GELU(Linear(d_in->E))). The linear branch is the residual path (no identity skip). Input [..., d_in].</summary>
public sealed class TokenProjector : Module<Tensor, Tensor>
{
    public readonly LayerNorm norm;
    public readonly Dropout dropout;
    public readonly Linear linear;
    public readonly Linear fc1;
    public readonly Linear fc2;

    public TokenProjector(int inputDimension, int outputDimension, double dropoutProbability) : base(nameof(TokenProjector))
    {
        norm = LayerNorm(inputDimension);
        dropout = Dropout(dropoutProbability);
        linear = Linear(inputDimension, outputDimension);
        fc1 = Linear(inputDimension, outputDimension);
        fc2 = Linear(outputDimension, outputDimension);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var h = dropout.forward(norm.forward(x));
        using var a = fc1.forward(h);
        using var g = functional.gelu(a);
        using var nl = fc2.forward(g);
        using var lin = linear.forward(h);
        return lin + nl;
    }
}

/// <summary>Global MLP head ('mlp', docs/method.md 3.2): p = Linear(d_in->E); h = Dropout(Linear(E->E)(GELU(p)));
/// LayerNorm(h + p). Input [..., d_in].</summary>
public sealed class MlpHead : Module<Tensor, Tensor>
{
    public readonly Linear proj;
    public readonly Linear fc;
    public readonly Dropout dropout;
    public readonly LayerNorm norm;

    public MlpHead(int inputDimension, int outputDimension, double dropoutProbability) : base(nameof(MlpHead))
    {
        proj = Linear(inputDimension, outputDimension);
        fc = Linear(outputDimension, outputDimension);
        dropout = Dropout(dropoutProbability);
        norm = LayerNorm(outputDimension);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var p = proj.forward(x);
        using var g = functional.gelu(p);
        using var f = fc.forward(g);
        using var h = dropout.forward(f);
        using var s = h + p;
        return norm.forward(s);
    }
}

/// <summary>
/// The trainable part of an aligned model: up to four projector pieces plus the temperature (docs/method.md 3.3-3.4).
/// Parameter names (state dict keys): image_local.*, image_global.*, text_local.*, text_global.*, temperature.
/// </summary>
public sealed class AlignmentNetwork : nn.Module
{
    /// <summary>Architecture.</summary>
    public ProjectorOptions Options { get; }
    public Module<Tensor, Tensor>? ImageLocal { get; }
    public Module<Tensor, Tensor>? ImageGlobal { get; }
    public Module<Tensor, Tensor>? TextLocal { get; }
    public Module<Tensor, Tensor> TextGlobal { get; }
    /// <summary>tau as a 0-d learnable parameter, applied directly: logits = z_i z_t^T / tau.</summary>
    public Parameter Temperature { get; }

    public AlignmentNetwork(ProjectorOptions options, int imageDimension, int textDimension, int? imageTokenDimension,
        int? textTokenDimension, double initialTemperature) : base(nameof(AlignmentNetwork))
    {
        options.Validate(imageDimension, textDimension, imageTokenDimension, textTokenDimension);
        Options = options;
        int e = options.EmbeddingDimension;
        ImageLocal = Piece(options.ImageLocal, imageTokenDimension ?? 0, e, options.Dropout);
        ImageGlobal = Piece(options.ImageGlobal, imageDimension, e, options.Dropout);
        TextLocal = Piece(options.TextLocal, textTokenDimension ?? 0, e, options.Dropout);
        TextGlobal = Piece(options.TextGlobal, options.UsesTextTokens ? e : textDimension, e, options.Dropout)!;
        if (ImageLocal != null) register_module("image_local", ImageLocal);
        if (ImageGlobal != null) register_module("image_global", ImageGlobal);
        if (TextLocal != null) register_module("text_local", TextLocal);
        register_module("text_global", TextGlobal);
        Temperature = new Parameter(tensor((float)initialTemperature));
        register_parameter("temperature", Temperature);
    }

    private static Module<Tensor, Tensor>? Piece(ProjectorKind kind, int input, int output, double p) => kind switch
    {
        ProjectorKind.None => null,
        ProjectorKind.Identity => Identity(),
        ProjectorKind.Linear => Linear(input, output),
        ProjectorKind.Mlp => new MlpHead(input, output, p),
        ProjectorKind.Token => new TokenProjector(input, output, p),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown projector kind."),
    };

    /// <summary>Image features -> L2-normalised [n, E]: normalize(mean_i P_loc(t_i) + P_cls(pooled)).</summary>
    /// <param name="pooled">[n, image dim] (CLS / pooled), used when ImageGlobal is not None.</param>
    /// <param name="tokens">[n, T, token dim] patch tokens (all positions real), used when ImageLocal is not None.</param>
    public Tensor ForwardImage(Tensor pooled, Tensor? tokens)
    {
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        if (ImageLocal != null)
        {
            if (tokens is null) throw new ArgumentException("This projector needs image token features (ImageLocal is not None).");
            sum = ImageLocal.forward(tokens).mean(new long[] { 1 });
        }
        if (ImageGlobal != null)
        {
            var g = ImageGlobal.forward(pooled);
            sum = sum is null ? g : sum + g;
        }
        return functional.normalize(sum!, p: 2, dim: -1).MoveToOuterDisposeScope();
    }

    /// <summary>Text features -> L2-normalised [n, E]: normalize(G(masked-mean_j Q_loc(s_j))) or normalize(G(pooled)).</summary>
    /// <param name="pooled">[n, text dim], used when TextLocal is None.</param>
    /// <param name="tokens">[n, M, token dim], used when TextLocal is not None.</param>
    /// <param name="mask">[n, M] float, 1 for real tokens (attention mask).</param>
    public Tensor ForwardText(Tensor pooled, Tensor? tokens, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        Tensor u;
        if (TextLocal != null)
        {
            if (tokens is null || mask is null) throw new ArgumentException("This projector needs text token features and mask (TextLocal is not None).");
            var q = TextLocal.forward(tokens);
            var m = mask.unsqueeze(-1);
            u = (q * m).sum(1) / mask.sum(1, keepdim: true).clamp_min(1f);
        }
        else u = pooled;
        return functional.normalize(TextGlobal.forward(u), p: 2, dim: -1).MoveToOuterDisposeScope();
    }

    /// <summary>Trainable parameter count (temperature included).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());
}
