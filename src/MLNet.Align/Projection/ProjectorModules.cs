using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Align.Projection;

/// <summary>
/// Dropout whose mask comes from <see cref="Generator"/> when one is set (the trainer sets its own per run), not from
/// the process-wide torch generator, so another training or any other torch user in the same process cannot change
/// this run's masks (a resumed run then replays bit for bit). The mask is torch's: bernoulli(1 - p) / (1 - p), as
/// at::dropout draws it, so the same generator state gives the same mask as <c>nn.Dropout</c>. Off in eval mode.
/// </summary>
public sealed class SeededDropout : Module<Tensor, Tensor>
{
    /// <summary>A dropout with probability <paramref name="probability"/> in [0, 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="probability"/> is outside [0, 1).</exception>
    public SeededDropout(double probability) : base("Dropout")
    {
        if (!(probability >= 0 && probability < 1)) throw new ArgumentOutOfRangeException(nameof(probability), probability, "Dropout probability must be in [0, 1).");
        Probability = probability;
    }

    /// <summary>Probability that an element is zeroed while training, in [0, 1).</summary>
    public double Probability { get; }

    /// <summary>The generator masks are drawn from (on the input's device); null draws from torch's default generator.</summary>
    public Generator? Generator { get; set; }

    /// <summary>[...] -> [...]: in training mode x * bernoulli(1 - p) / (1 - p); otherwise x itself (an alias).</summary>
    public override Tensor forward(Tensor x)
    {
        if (!training || Probability == 0) return x.alias();
        using var noise = empty_like(x);
        noise.bernoulli_(1 - Probability, Generator);
        using var keep = TorchScalars.Div(noise, 1 - Probability);
        return x.mul(keep);
    }
}

/// <summary>Token projector ('patch', docs/method.md 3.2): LayerNorm(d_in) -> Dropout(p) -> Linear(d_in->E) +
/// Linear(E->E)(GELU(Linear(d_in->E))). The linear branch is the residual path (no identity skip). Input [..., d_in].</summary>
public sealed class TokenProjector : Module<Tensor, Tensor>
{
    // Field names are the state-dict keys (RegisterComponents), so they keep TorchSharp's lower-case style.
    /// <summary>LayerNorm over d_in (eps 1e-5), applied first.</summary>
    public readonly LayerNorm norm;
    /// <summary>Dropout with the configured probability, after <see cref="norm"/> (off in eval mode).</summary>
    public readonly SeededDropout dropout;
    /// <summary>The linear branch d_in -> E (the residual path).</summary>
    public readonly Linear linear;
    /// <summary>First layer of the non-linear branch, d_in -> E, followed by GELU.</summary>
    public readonly Linear fc1;
    /// <summary>Second layer of the non-linear branch, E -> E.</summary>
    public readonly Linear fc2;

    /// <summary>A token projector with TorchSharp's default initialisation (seed it with torch.random.manual_seed).</summary>
    /// <param name="inputDimension">d_in, the width of each input token or pooled vector (&gt; 0).</param>
    /// <param name="outputDimension">E, the width of the shared space (&gt; 0).</param>
    /// <param name="dropoutProbability">Dropout probability in [0, 1) (the paper uses 0.1).</param>
    public TokenProjector(int inputDimension, int outputDimension, double dropoutProbability) : base(nameof(TokenProjector))
    {
        norm = LayerNorm(inputDimension);
        dropout = new SeededDropout(dropoutProbability);
        linear = Linear(inputDimension, outputDimension);
        fc1 = Linear(inputDimension, outputDimension);
        fc2 = Linear(outputDimension, outputDimension);
        RegisterComponents();
    }

    /// <summary>Applies the projector to the last axis: [..., d_in] -> [..., E] (not normalised).</summary>
    /// <param name="x">Float tensor [..., d_in].</param>
    public override Tensor forward(Tensor x)
    {
        using var h = dropout.forward(norm.forward(x));
        using var a = fc1.forward(h);
        using var g = functional.gelu(a);
        using var nl = fc2.forward(g);
        using var lin = linear.forward(h);
        return TorchScalars.Add(lin, nl); // not `lin + nl`: its implicit alpha scalar can be freed mid-op (TorchScalars)
    }

    /// <summary>
    /// The pooled output of <see cref="forward"/>: sum_t w[n, t] forward(x)[n, t, :] -> [n, E], with w the token mean
    /// (1/T for every token) when <paramref name="weights"/> is null. <see cref="linear"/> and <see cref="fc2"/> are
    /// affine, so they are applied after the pooling: sum_t w_t (A h_t + a) = A (sum_t w_t h_t) + a sum_t w_t. The function
    /// and its gradients are those of pooling <see cref="forward"/> (up to float rounding), with two of the three
    /// per-token matrix products replaced by [n, d] ones; LayerNorm, dropout, <see cref="fc1"/> and GELU stay per token.
    /// </summary>
    /// <param name="x">Float tensor [n, T, d_in].</param>
    /// <param name="weights">Pooling weights [n, T] (e.g. mask / real-token count; a row may sum to 0 for an item with
    /// no real token, whose output is then 0, as pooling <see cref="forward"/> gives), or null for the plain mean.</param>
    public Tensor ForwardPooled(Tensor x, Tensor? weights = null)
    {
        using var scope = NewDisposeScope();
        var h = dropout.forward(norm.forward(x));
        var g = functional.gelu(fc1.forward(h));
        Tensor hp, gp, y;
        if (weights is null)
        {
            hp = h.mean(new long[] { 1 });
            gp = g.mean(new long[] { 1 });
            y = TorchScalars.Add(linear.forward(hp), fc2.forward(gp));
        }
        else
        {
            var w = weights.unsqueeze(1); // [n, 1, T]: a batched product pools without an [n, T, d] temporary
            hp = w.bmm(h).squeeze(1);
            gp = w.bmm(g).squeeze(1);
            var bias = TorchScalars.Add(linear.bias!, fc2.bias!);
            y = TorchScalars.Add(TorchScalars.Add(functional.linear(hp, linear.weight!), functional.linear(gp, fc2.weight!)),
                weights.sum(1, keepdim: true) * bias);
        }
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>Global MLP head ('mlp', docs/method.md 3.2): p = Linear(d_in->E); h = Dropout(Linear(E->E)(GELU(p)));
/// LayerNorm(h + p). Input [..., d_in].</summary>
public sealed class MlpHead : Module<Tensor, Tensor>
{
    /// <summary>p = Linear(d_in -> E), the input projection and residual.</summary>
    public readonly Linear proj;
    /// <summary>Linear(E -> E) applied to GELU(p).</summary>
    public readonly Linear fc;
    /// <summary>Dropout on the output of <see cref="fc"/> (off in eval mode).</summary>
    public readonly SeededDropout dropout;
    /// <summary>LayerNorm over E (eps 1e-5) applied to h + p.</summary>
    public readonly LayerNorm norm;

    /// <summary>A global MLP head with TorchSharp's default initialisation (seed it with torch.random.manual_seed).</summary>
    /// <param name="inputDimension">d_in, the width of the input vector (&gt; 0).</param>
    /// <param name="outputDimension">E, the width of the shared space (&gt; 0).</param>
    /// <param name="dropoutProbability">Dropout probability in [0, 1) (the paper uses 0.1).</param>
    public MlpHead(int inputDimension, int outputDimension, double dropoutProbability) : base(nameof(MlpHead))
    {
        proj = Linear(inputDimension, outputDimension);
        fc = Linear(outputDimension, outputDimension);
        dropout = new SeededDropout(dropoutProbability);
        norm = LayerNorm(outputDimension);
        RegisterComponents();
    }

    /// <summary>Applies the head to the last axis: [..., d_in] -> [..., E] (not normalised).</summary>
    /// <param name="x">Float tensor [..., d_in].</param>
    public override Tensor forward(Tensor x)
    {
        using var p = proj.forward(x);
        using var g = functional.gelu(p);
        using var f = fc.forward(g);
        using var h = dropout.forward(f);
        using var s = TorchScalars.Add(h, p); // not `h + p` (TorchScalars)
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
    /// <summary>Per-token image piece P_loc, applied to each patch token [batch, tokens, image token dim] -> [batch,
    /// tokens, E] and averaged over patch tokens; null when the image side uses pooled features only.</summary>
    public Module<Tensor, Tensor>? ImageLocal { get; }
    /// <summary>Image piece on the pooled (or CLS) feature [batch, image dim] -> [batch, E]; null when
    /// <see cref="ProjectorOptions.ImageGlobal"/> is <see cref="ProjectorKind.None"/>.</summary>
    public Module<Tensor, Tensor>? ImageGlobal { get; }
    /// <summary>Per-token text piece Q_loc [batch, tokens, text token dim] -> [batch, tokens, E], masked-mean pooled;
    /// null when the text side uses pooled features only.</summary>
    public Module<Tensor, Tensor>? TextLocal { get; }
    /// <summary>Global text piece G: [batch, E] after <see cref="TextLocal"/> (or [batch, text dim] without it) ->
    /// [batch, E]. Always present.</summary>
    public Module<Tensor, Tensor> TextGlobal { get; }
    /// <summary>tau as a 0-d learnable parameter, applied directly: logits = z_i z_t^T / tau.</summary>
    public Parameter Temperature { get; }

    /// <summary>Builds the pieces <paramref name="options"/> asks for, registered as image_local, image_global,
    /// text_local, text_global, and the temperature parameter.</summary>
    /// <param name="options">Architecture (piece kinds, E, dropout).</param>
    /// <param name="imageDimension">Pooled image feature width (&gt; 0).</param>
    /// <param name="textDimension">Pooled text feature width (&gt; 0).</param>
    /// <param name="imageTokenDimension">Image token width, required when the image side has a local piece.</param>
    /// <param name="textTokenDimension">Text token width, required when the text side has a local piece.</param>
    /// <param name="initialTemperature">Initial tau (the paper uses 0.07).</param>
    /// <exception cref="ArgumentException">The architecture does not fit the widths (see <see cref="ProjectorOptions.Validate(int, int, int?, int?)"/>).</exception>
    public AlignmentNetwork(ProjectorOptions options, int imageDimension, int textDimension, int? imageTokenDimension,
        int? textTokenDimension, double initialTemperature) : base(nameof(AlignmentNetwork))
    {
        options.Validate(imageDimension, textDimension, imageTokenDimension, textTokenDimension);
        Options = options;
        int e = options.EmbeddingDimension;
        ImageLocal = Piece(options.ImageLocal, imageTokenDimension ?? 0, e, options);
        ImageGlobal = Piece(options.ImageGlobal, imageDimension, e, options);
        TextLocal = Piece(options.TextLocal, textTokenDimension ?? 0, e, options);
        TextGlobal = Piece(options.TextGlobal, options.UsesTextTokens ? e : textDimension, e, options)!;
        if (ImageLocal != null) register_module("image_local", ImageLocal);
        if (ImageGlobal != null) register_module("image_global", ImageGlobal);
        if (TextLocal != null) register_module("text_local", TextLocal);
        register_module("text_global", TextGlobal);
        Temperature = new Parameter(tensor((float)initialTemperature));
        register_parameter("temperature", Temperature);
    }

    /// <summary>Points every <see cref="SeededDropout"/> of the network at <paramref name="generator"/> (null: torch's
    /// default generator). The trainer sets its own per run so that parallel runs in one process stay reproducible.</summary>
    public void SetDropoutGenerator(Generator? generator)
    {
        foreach (var m in modules())
            if (m is SeededDropout d) d.Generator = generator;
    }

    private static Module<Tensor, Tensor>? Piece(ProjectorKind kind, int input, int output, ProjectorOptions o) => kind switch
    {
        ProjectorKind.None => null,
        ProjectorKind.Identity => Identity(),
        ProjectorKind.Linear => Linear(input, output),
        ProjectorKind.Mlp => new MlpHead(input, output, o.Dropout),
        ProjectorKind.Token => new TokenProjector(input, output, o.Dropout),
        ProjectorKind.Anchors => new AnchorProjector(input, output, o.AnchorTopK, o.AnchorPower),
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
            // The token projector pools before its affine maps (TokenProjector.ForwardPooled): the same function, fewer products.
            sum = ImageLocal is TokenProjector tp ? tp.ForwardPooled(tokens) : ImageLocal.forward(tokens).mean(new long[] { 1 });
        }
        if (ImageGlobal != null)
        {
            var g = ImageGlobal.forward(pooled);
            sum = sum is null ? g : TorchScalars.Add(sum, g);
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
            var count = TorchScalars.ClampMin(mask.sum(1, keepdim: true), 1f);
            if (TextLocal is TokenProjector tq) u = tq.ForwardPooled(tokens, mask / count);
            else u = (TextLocal.forward(tokens) * mask.unsqueeze(-1)).sum(1) / count;
        }
        else u = pooled;
        return functional.normalize(TextGlobal.forward(u), p: 2, dim: -1).MoveToOuterDisposeScope();
    }

    /// <summary>Trainable parameter count (temperature included).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());
}
