using Onnx;

using MLNet.Align.Onnx;

namespace MLNet.Align.Tests.Shared;

/// <summary>Shape of a ViT stand-in (<see cref="StandInEncoders.Vit"/>). Defaults give DINOv2's I/O signature at a
/// small width: <c>pixel_values [N, 3, 224, 224]</c> -> <c>last_hidden_state [N, 1 + 256, 64]</c>.</summary>
internal sealed record VitStandInOptions
{
    /// <summary>Square input side S in pixels (DINOv2: 224).</summary>
    public int ImageSize { get; init; } = 224;
    /// <summary>Patch side P: a P x P stride-P convolution (DINOv2: 14), so (S / P)^2 patch tokens.</summary>
    public int PatchSize { get; init; } = 14;
    /// <summary>Token width D (DINOv2-S 384, -L 1024; small here).</summary>
    public int Dimension { get; init; } = 64;
    /// <summary>Attention heads (D must be divisible by it).</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Transformer blocks (pre-norm, LayerScale, as DINOv2).</summary>
    public int Layers { get; init; } = 1;
    /// <summary>MLP hidden width = MlpRatio * D (DINOv2: 4).</summary>
    public int MlpRatio { get; init; } = 4;
    /// <summary>Register tokens inserted after CLS (DINOv2 "with registers": 4); 0 = plain DINOv2 layout.</summary>
    public int RegisterTokens { get; init; }
    /// <summary>LayerNorm epsilon (DINOv2: 1e-6).</summary>
    public float LayerNormEpsilon { get; init; } = 1e-6f;
    /// <summary>Seed of the fixed weights.</summary>
    public int Seed { get; init; } = 14;
    /// <summary>Input name (HF DINOv2 export: pixel_values).</summary>
    public string InputName { get; init; } = "pixel_values";
    /// <summary>Output name (HF export: last_hidden_state).</summary>
    public string OutputName { get; init; } = "last_hidden_state";

    /// <summary>Patch tokens (S / P)^2.</summary>
    public int PatchTokens => (ImageSize / PatchSize) * (ImageSize / PatchSize);
    /// <summary>Output sequence length 1 + RegisterTokens + PatchTokens.</summary>
    public int SequenceLength => 1 + RegisterTokens + PatchTokens;

    internal void Validate()
    {
        if (ImageSize <= 0 || PatchSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"ImageSize {ImageSize} must be a positive multiple of PatchSize {PatchSize}.");
        if (Dimension <= 0 || Heads <= 0 || Dimension % Heads != 0) throw new ArgumentException($"Dimension {Dimension} must be a positive multiple of Heads {Heads}.");
        if (Layers < 1 || MlpRatio < 1 || RegisterTokens < 0) throw new ArgumentException("Layers and MlpRatio must be >= 1, RegisterTokens >= 0.");
    }
}

/// <summary>Shape of a RoBERTa stand-in (<see cref="StandInEncoders.Roberta"/>): <c>input_ids</c>,
/// <c>attention_mask</c> int64 [N, L] -> <c>last_hidden_state [N, L, D]</c>.</summary>
internal sealed record RobertaStandInOptions
{
    /// <summary>Vocabulary size (rows of the token embedding). Default: GPT-2's 50,257 byte-level BPE tokens plus
    /// &lt;s&gt;, &lt;/s&gt; and &lt;pad&gt; appended (see <see cref="StandInEncoders.RobertaStyleVocabulary"/>).</summary>
    public int VocabSize { get; init; } = StandInEncoders.Gpt2VocabSize + 3;
    /// <summary>Hidden width D (all-roberta-large-v1: 1024; small here).</summary>
    public int Dimension { get; init; } = 32;
    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Transformer blocks (post-norm, as BERT/RoBERTa).</summary>
    public int Layers { get; init; } = 1;
    /// <summary>Feed-forward width (RoBERTa: 4 D).</summary>
    public int FeedForward { get; init; } = 128;
    /// <summary>Position-embedding rows (RoBERTa: 514 = 512 + padding offset 2).</summary>
    public int MaxPositions { get; init; } = 514;
    /// <summary>RoBERTa's padding_idx for positions: position id = cumsum(mask) * mask + PositionPaddingIndex.</summary>
    public int PositionPaddingIndex { get; init; } = 1;
    /// <summary>LayerNorm epsilon (RoBERTa: 1e-5).</summary>
    public float LayerNormEpsilon { get; init; } = 1e-5f;
    /// <summary>Seed of the fixed weights.</summary>
    public int Seed { get; init; } = 50;
    /// <summary>Output name (HF export: last_hidden_state).</summary>
    public string OutputName { get; init; } = "last_hidden_state";

    internal void Validate()
    {
        if (Dimension <= 0 || Heads <= 0 || Dimension % Heads != 0) throw new ArgumentException($"Dimension {Dimension} must be a positive multiple of Heads {Heads}.");
        if (VocabSize < 1 || Layers < 1 || FeedForward < 1 || MaxPositions < PositionPaddingIndex + 2) throw new ArgumentException("VocabSize, Layers, FeedForward must be >= 1 and MaxPositions > PositionPaddingIndex + 1.");
    }
}

/// <summary>Weights of one transformer block of a stand-in; matrices row-major [out, in] as torch.nn.Linear stores them.</summary>
internal sealed class StandInBlockWeights
{
    public required float[] Ln1Weight { get; init; }
    public required float[] Ln1Bias { get; init; }
    /// <summary>[3D, D]: rows 0..D-1 = query (head-major), D..2D-1 = key, 2D..3D-1 = value (timm / HF layout).</summary>
    public required float[] QkvWeight { get; init; }
    public required float[] QkvBias { get; init; }
    public required float[] ProjWeight { get; init; }
    public required float[] ProjBias { get; init; }
    /// <summary>LayerScale after attention (ViT only; null for RoBERTa).</summary>
    public float[]? LayerScale1 { get; init; }
    public required float[] Ln2Weight { get; init; }
    public required float[] Ln2Bias { get; init; }
    /// <summary>[M, D].</summary>
    public required float[] Fc1Weight { get; init; }
    public required float[] Fc1Bias { get; init; }
    /// <summary>[D, M].</summary>
    public required float[] Fc2Weight { get; init; }
    public required float[] Fc2Bias { get; init; }
    /// <summary>LayerScale after the MLP (ViT only).</summary>
    public float[]? LayerScale2 { get; init; }
}

/// <summary>The fixed weights of a ViT stand-in (for an independent re-computation).</summary>
internal sealed class VitStandInWeights
{
    /// <summary>[D, 3, P, P].</summary>
    public required float[] PatchWeight { get; init; }
    public required float[] PatchBias { get; init; }
    /// <summary>[D].</summary>
    public required float[] ClsToken { get; init; }
    /// <summary>[R, D] (empty without registers).</summary>
    public required float[] Registers { get; init; }
    /// <summary>[1 + T, D]: added to CLS and patch tokens before the registers are inserted (DINOv2).</summary>
    public required float[] PositionEmbedding { get; init; }
    public required StandInBlockWeights[] Blocks { get; init; }
    public required float[] NormWeight { get; init; }
    public required float[] NormBias { get; init; }
}

/// <summary>The fixed weights of a RoBERTa stand-in.</summary>
internal sealed class RobertaStandInWeights
{
    /// <summary>[V, D].</summary>
    public required float[] TokenEmbedding { get; init; }
    /// <summary>[MaxPositions, D].</summary>
    public required float[] PositionEmbedding { get; init; }
    /// <summary>[D]: the single token-type embedding (RoBERTa has one type).</summary>
    public required float[] TokenTypeEmbedding { get; init; }
    public required float[] EmbeddingLnWeight { get; init; }
    public required float[] EmbeddingLnBias { get; init; }
    public required StandInBlockWeights[] Blocks { get; init; }
}

/// <summary>
/// Small, deterministic stand-ins for the paper's encoders, generated here (no download) so that the ViT-token and
/// byte-level-BPE paths run end to end in tests and in the README walkthrough. Weights are seeded random values (fixed
/// by the options' seed), so features carry no meaning; the graphs have the real models' I/O signatures and op
/// structure:
/// <list type="bullet">
/// <item>ViT (DINOv2-shaped): 14x14 stride-14 patch convolution, CLS token, learned position embeddings, optional
/// register tokens, pre-norm blocks (LayerNorm, multi-head softmax attention, LayerScale, GELU MLP), final LayerNorm.</item>
/// <item>RoBERTa-shaped: token + position (cumsum of the mask + padding_idx, as HF RoBERTa) + token-type embeddings,
/// LayerNorm, post-norm blocks with additive attention-mask bias (-1e9 on padded keys).</item>
/// </list>
/// Opset 20, float32, symbolic batch (and sequence) dimensions.
/// </summary>
internal static class StandInEncoders
{
    /// <summary>GPT-2's byte-level BPE vocabulary size (encoder.json: 50,256 merges-derived tokens + &lt;|endoftext|&gt;).</summary>
    public const int Gpt2VocabSize = 50257;

    /// <summary>The ViT stand-in's weights for <paramref name="options"/> (same seed, same values).</summary>
    public static VitStandInWeights VitWeights(VitStandInOptions? options = null)
    {
        var o = options ?? new VitStandInOptions();
        o.Validate();
        var r = new Normal(o.Seed);
        int d = o.Dimension, p = o.PatchSize, m = o.MlpRatio * d;
        return new VitStandInWeights
        {
            PatchWeight = r.Next(d * 3 * p * p, 1.0 / Math.Sqrt(3 * p * p)),
            PatchBias = r.Next(d, 0.1),
            ClsToken = r.Next(d, 1.0),
            Registers = r.Next(o.RegisterTokens * d, 1.0),
            PositionEmbedding = r.Next((1 + o.PatchTokens) * d, 0.5),
            Blocks = Enumerable.Range(0, o.Layers).Select(_ => Block(r, d, m, layerScale: true)).ToArray(),
            NormWeight = r.Around(d, 1.0, 0.1),
            NormBias = r.Next(d, 0.1),
        };
    }

    /// <summary>The RoBERTa stand-in's weights for <paramref name="options"/>.</summary>
    public static RobertaStandInWeights RobertaWeights(RobertaStandInOptions? options = null)
    {
        var o = options ?? new RobertaStandInOptions();
        o.Validate();
        var r = new Normal(o.Seed);
        int d = o.Dimension;
        return new RobertaStandInWeights
        {
            TokenEmbedding = r.Next(o.VocabSize * d, 1.0),
            PositionEmbedding = r.Next(o.MaxPositions * d, 0.3),
            TokenTypeEmbedding = r.Next(d, 0.1),
            EmbeddingLnWeight = r.Around(d, 1.0, 0.1),
            EmbeddingLnBias = r.Next(d, 0.1),
            Blocks = Enumerable.Range(0, o.Layers).Select(_ => Block(r, d, o.FeedForward, layerScale: false)).ToArray(),
        };
    }

    /// <summary>The ViT stand-in as ONNX bytes: <c>InputName [batch, 3, S, S]</c> float32 (already normalised pixels)
    /// -> <c>OutputName [batch, 1 + R + T, D]</c> with CLS at index 0, then R registers, then T patch tokens
    /// (row-major patch grid).</summary>
    /// <exception cref="ArgumentException">Inconsistent options (message says which).</exception>
    public static byte[] Vit(VitStandInOptions? options = null)
    {
        var o = options ?? new VitStandInOptions();
        var w = VitWeights(o);
        int d = o.Dimension, p = o.PatchSize, t = o.PatchTokens;
        var b = new OnnxGraphBuilder("vit_standin");
        var x = b.Input(o.InputName, "batch", 3, o.ImageSize, o.ImageSize);
        var cw = b.Constant("patch_embed.proj.weight", w.PatchWeight, d, 3, p, p);
        var cb = b.Constant("patch_embed.proj.bias", w.PatchBias, d);
        var conv = b.Op("Conv", [x, cw, cb], new Dictionary<string, object> { ["kernel_shape"] = new long[] { p, p }, ["strides"] = new long[] { p, p } });
        var flat = b.Op("Reshape", conv, b.ConstantInt64("flat_shape", [0, d, -1], 3));               // [N, D, T]
        var patches = Transpose(b, flat, 0, 2, 1);                                                       // [N, T, D]
        var n = b.Op("Shape", [x], new Dictionary<string, object> { ["start"] = 0L, ["end"] = 1L });     // [1] = N
        var cls = Broadcast(b, n, b.Constant("cls_token", w.ClsToken, 1, 1, d), 1, d);                  // [N, 1, D]
        var seq = b.Op("Concat", [cls, patches], new Dictionary<string, object> { ["axis"] = 1L });
        seq = b.Op("Add", seq, b.Constant("pos_embed", w.PositionEmbedding, 1, 1 + t, d));
        if (o.RegisterTokens > 0)
        {
            var regs = Broadcast(b, n, b.Constant("register_tokens", w.Registers, 1, o.RegisterTokens, d), o.RegisterTokens, d);
            var axis1 = b.ConstantInt64("seq_axis", [1], 1);
            var head = b.Op("Slice", seq, b.ConstantInt64("s0", [0], 1), b.ConstantInt64("s1", [1], 1), axis1);
            var tail = b.Op("Slice", seq, b.ConstantInt64("t0", [1], 1), b.ConstantInt64("t1", [long.MaxValue], 1), axis1);
            seq = b.Op("Concat", [head, regs, tail], new Dictionary<string, object> { ["axis"] = 1L });
        }
        for (int i = 0; i < w.Blocks.Length; i++)
        {
            var blk = w.Blocks[i];
            string name = $"blocks.{i}";
            var h = b.LayerNorm(seq, blk.Ln1Weight, blk.Ln1Bias, o.LayerNormEpsilon, name + ".norm1");
            var a = Attention(b, h, null, blk, d, o.Heads, name + ".attn");
            seq = b.Op("Add", seq, b.Op("Mul", a, b.Constant(name + ".ls1", blk.LayerScale1!, d)));
            h = b.LayerNorm(seq, blk.Ln2Weight, blk.Ln2Bias, o.LayerNormEpsilon, name + ".norm2");
            var f = Mlp(b, h, blk, d, o.MlpRatio * d, name + ".mlp");
            seq = b.Op("Add", seq, b.Op("Mul", f, b.Constant(name + ".ls2", blk.LayerScale2!, d)));
        }
        var outp = b.LayerNorm(seq, w.NormWeight, w.NormBias, o.LayerNormEpsilon, "norm");
        b.Node("Identity", [outp], outputs: [o.OutputName]);
        b.Output(o.OutputName, "batch", o.SequenceLength, d);
        return b.ToBytes(docString: $"MLNet.Align ViT stand-in (DINOv2-shaped, seeded random weights, seed {o.Seed}): not a trained model.");
    }

    /// <summary>The RoBERTa stand-in as ONNX bytes: <c>input_ids</c>, <c>attention_mask</c> int64
    /// [batch, sequence] -> <c>OutputName [batch, sequence, D]</c>.</summary>
    /// <exception cref="ArgumentException">Inconsistent options.</exception>
    public static byte[] Roberta(RobertaStandInOptions? options = null)
    {
        var o = options ?? new RobertaStandInOptions();
        var w = RobertaWeights(o);
        int d = o.Dimension;
        var b = new OnnxGraphBuilder("roberta_standin");
        var ids = b.Input("input_ids", TensorProto.Types.DataType.Int64, "batch", "sequence");
        var mask = b.Input("attention_mask", TensorProto.Types.DataType.Int64, "batch", "sequence");
        var we = b.Op("Gather", b.Constant("embeddings.word_embeddings.weight", w.TokenEmbedding, o.VocabSize, d), ids);
        var cum = b.Op("CumSum", mask, b.ConstantInt64("cum_axis", [1], []));
        var pos = b.Op("Add", b.Op("Mul", cum, mask), b.ConstantInt64("padding_idx", [o.PositionPaddingIndex], []));
        var pe = b.Op("Gather", b.Constant("embeddings.position_embeddings.weight", w.PositionEmbedding, o.MaxPositions, d), pos);
        var e = b.Op("Add", b.Op("Add", we, pe), b.Constant("embeddings.token_type_embeddings.0", w.TokenTypeEmbedding, d));
        var x = b.LayerNorm(e, w.EmbeddingLnWeight, w.EmbeddingLnBias, o.LayerNormEpsilon, "embeddings.LayerNorm");
        // Additive key mask [N, 1, 1, L]: 0 on real tokens, -1e9 on padding.
        var maskF = b.Op("Cast", [mask], new Dictionary<string, object> { ["to"] = (long)TensorProto.Types.DataType.Float });
        var inv = b.Op("Sub", b.Constant("one", [1f], 1), maskF);
        var bias = b.Op("Mul", inv, b.Constant("mask_value", [-1e9f], 1));
        bias = b.Op("Unsqueeze", bias, b.ConstantInt64("mask_axes", [1, 2], 2));
        for (int i = 0; i < w.Blocks.Length; i++)
        {
            var blk = w.Blocks[i];
            string name = $"encoder.layer.{i}";
            var a = Attention(b, x, bias, blk, d, o.Heads, name + ".attention");
            x = b.LayerNorm(b.Op("Add", x, a), blk.Ln1Weight, blk.Ln1Bias, o.LayerNormEpsilon, name + ".attention.output.LayerNorm");
            var f = Mlp(b, x, blk, d, o.FeedForward, name + ".ffn");
            x = b.LayerNorm(b.Op("Add", x, f), blk.Ln2Weight, blk.Ln2Bias, o.LayerNormEpsilon, name + ".output.LayerNorm");
        }
        b.Node("Identity", [x], outputs: [o.OutputName]);
        b.Output(o.OutputName, "batch", "sequence", d);
        return b.ToBytes(docString: $"MLNet.Align RoBERTa stand-in (seeded random weights, seed {o.Seed}): not a trained model.");
    }

    /// <summary>
    /// A RoBERTa-style vocab.json for the stand-in text model: GPT-2's encoder.json (token -> id, ids 0..50256 kept as
    /// they are) with &lt;s&gt; = 50257, &lt;/s&gt; = 50258 and &lt;pad&gt; = 50259 appended. (RoBERTa's own vocab.json
    /// holds the same byte-level tokens and merges, with &lt;s&gt; 0, &lt;pad&gt; 1, &lt;/s&gt; 2 and its fairseq id
    /// order; keeping GPT-2's ids lets the tokenizer be checked against GPT-2's reference encoder id for id.)
    /// </summary>
    /// <param name="gpt2EncoderJson">GPT-2's encoder.json bytes (UTF-8 JSON object of token -> id).</param>
    /// <exception cref="InvalidDataException">Not a JSON object of token -> id, or the ids are not 0..n-1.</exception>
    public static byte[] RobertaStyleVocabulary(byte[] gpt2EncoderJson)
    {
        ArgumentNullException.ThrowIfNull(gpt2EncoderJson);
        Dictionary<string, int> vocab;
        try { vocab = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, int>>(gpt2EncoderJson) ?? []; }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"encoder.json is not a JSON object of token -> id: {e.Message}", e); }
        int n = vocab.Count;
        if (vocab.Values.Distinct().Count() != n || vocab.Values.Any(v => v < 0 || v >= n))
            throw new InvalidDataException($"encoder.json ids must be exactly 0..{n - 1}.");
        foreach (var special in new[] { "<s>", "</s>", "<pad>" })
            if (!vocab.TryAdd(special, vocab.Count)) throw new InvalidDataException($"encoder.json already has '{special}'.");
        return System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(vocab.OrderBy(kv => kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value));
    }

    private static StandInBlockWeights Block(Normal r, int d, int m, bool layerScale) => new()
    {
        Ln1Weight = r.Around(d, 1.0, 0.1),
        Ln1Bias = r.Next(d, 0.1),
        QkvWeight = r.Next(3 * d * d, 1.0 / Math.Sqrt(d)),
        QkvBias = r.Next(3 * d, 0.1),
        ProjWeight = r.Next(d * d, 1.0 / Math.Sqrt(d)),
        ProjBias = r.Next(d, 0.1),
        LayerScale1 = layerScale ? r.Around(d, 0.5, 0.1) : null,
        Ln2Weight = r.Around(d, 1.0, 0.1),
        Ln2Bias = r.Next(d, 0.1),
        Fc1Weight = r.Next(m * d, 1.0 / Math.Sqrt(d)),
        Fc1Bias = r.Next(m, 0.1),
        Fc2Weight = r.Next(d * m, 1.0 / Math.Sqrt(m)),
        Fc2Bias = r.Next(d, 0.1),
        LayerScale2 = layerScale ? r.Around(d, 0.5, 0.1) : null,
    };

    /// <summary>Multi-head softmax attention on x [N, L, D]: softmax(q k^T / sqrt(dh) + bias) v, heads concatenated,
    /// output projection.</summary>
    private static string Attention(OnnxGraphBuilder b, string x, string? bias, StandInBlockWeights w, int d, int heads, string name)
    {
        int dh = d / heads;
        var qkv = b.Linear(x, w.QkvWeight, w.QkvBias, 3 * d, d, name + ".qkv");                       // [N, L, 3D]
        var parts = b.Node("Split", [qkv], 3, attributes: new Dictionary<string, object> { ["axis"] = -1L, ["num_outputs"] = 3L });
        var headShape = b.ConstantInt64(name + ".head_shape", [0, 0, heads, dh], 4);
        string Heads(string v, params long[] perm) => Transpose(b, b.Op("Reshape", v, headShape), perm);
        var q = Heads(parts[0], 0, 2, 1, 3);                                                            // [N, H, L, dh]
        var kT = Heads(parts[1], 0, 2, 3, 1);                                                           // [N, H, dh, L]
        var v = Heads(parts[2], 0, 2, 1, 3);
        var scores = b.Op("Mul", b.Op("MatMul", q, kT), b.Constant(name + ".scale", [(float)(1.0 / Math.Sqrt(dh))], 1));
        if (bias is not null) scores = b.Op("Add", scores, bias);
        var att = b.Op("Softmax", [scores], new Dictionary<string, object> { ["axis"] = -1L });
        var ctx = Transpose(b, b.Op("MatMul", att, v), 0, 2, 1, 3);                                     // [N, L, H, dh]
        ctx = b.Op("Reshape", ctx, b.ConstantInt64(name + ".merge_shape", [0, 0, d], 3));
        return b.Linear(ctx, w.ProjWeight, w.ProjBias, d, d, name + ".proj");
    }

    private static string Mlp(OnnxGraphBuilder b, string x, StandInBlockWeights w, int d, int m, string name)
        => b.Linear(b.Gelu(b.Linear(x, w.Fc1Weight, w.Fc1Bias, m, d, name + ".fc1")), w.Fc2Weight, w.Fc2Bias, d, m, name + ".fc2");

    private static string Transpose(OnnxGraphBuilder b, string x, params long[] perm)
        => b.Op("Transpose", [x], new Dictionary<string, object> { ["perm"] = perm });

    /// <summary>Expands a [1, k, D] constant to [N, k, D] (N read from the input's shape).</summary>
    private static string Broadcast(OnnxGraphBuilder b, string n, string constant, int k, int d)
    {
        var shape = b.Op("Concat", [n, b.ConstantInt64("kd", [k, d], 2)], new Dictionary<string, object> { ["axis"] = 0L });
        return b.Op("Expand", constant, shape);
    }

    /// <summary>Deterministic normal samples (Box-Muller over a seeded <see cref="Random"/>).</summary>
    private sealed class Normal(int seed)
    {
        private readonly Random _r = new(seed);

        public float[] Next(int count, double std)
        {
            var v = new float[count];
            for (int i = 0; i < count; i++)
            {
                double u1 = 1.0 - _r.NextDouble(), u2 = _r.NextDouble();
                v[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }
            return v;
        }

        public float[] Around(int count, double mean, double std)
        {
            var v = Next(count, std);
            for (int i = 0; i < count; i++) v[i] += (float)mean;
            return v;
        }
    }
}
