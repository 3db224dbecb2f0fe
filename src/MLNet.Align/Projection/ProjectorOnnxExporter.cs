using MLNet.Align.Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// Writes the two sides of an <see cref="AlignedModel"/> as ONNX graphs (opset 20, symbolic batch) with the fixed
/// names of <see cref="ProjectorOnnxNames"/>. The graphs compute exactly the TorchSharp eval-mode forward pass
/// (dropout off): MatMul+Add for Linear, LayerNormalization (eps 1e-5), exact-erf Gelu, ReduceMean over patch tokens,
/// masked mean over text tokens (divided by max(sum mask, 1)), then x / max(||x||, 1e-12).
/// </summary>
internal static class ProjectorOnnxExporter
{
    private const float LayerNormEpsilon = 1e-5f;

    /// <summary>The image graph: image_embedding [batch, image dim] (+ image_tokens [batch, tokens, d] or
    /// [batch, d, height, width] for <see cref="ImageTokenLayout.Nchw"/>) -> image_aligned [batch, E].</summary>
    public static byte[] ExportImage(AlignedModel model, ImageTokenLayout layout = ImageTokenLayout.TokensByDim)
    {
        var net = model.Network;
        var b = new OnnxGraphBuilder("image_projector");
        var pooled = b.Input(ProjectorOnnxNames.ImageEmbedding, "batch", model.ImageDimension);
        string? sum = null;
        if (net.ImageLocal != null)
        {
            int d = model.ImageTokenDimension!.Value;
            string tokens;
            if (layout == ImageTokenLayout.TokensByDim)
                tokens = b.Input(ProjectorOnnxNames.ImageTokens, "batch", "tokens", d);
            else
            {
                var map = b.Input(ProjectorOnnxNames.ImageTokens, "batch", d, "height", "width");
                var shape = b.ConstantInt64("nchw_shape", new long[] { 0, d, -1 }, 3);
                var flat = b.Op("Reshape", map, shape);                       // [N, C, H*W]
                tokens = b.Op("Transpose", new[] { flat }, new Dictionary<string, object> { ["perm"] = new long[] { 0, 2, 1 } }); // [N, H*W, C]
            }
            var projected = Piece(b, net.ImageLocal, tokens, "image_local");
            var axes = b.ConstantInt64("token_axis", new long[] { 1 }, 1);
            sum = b.Op("ReduceMean", new[] { projected, axes }, new Dictionary<string, object> { ["keepdims"] = 0L });
        }
        if (net.ImageGlobal != null)
        {
            var g = Piece(b, net.ImageGlobal, pooled, "image_global");
            sum = sum is null ? g : b.Op("Add", sum, g);
        }
        var z = b.L2Normalize(sum!);
        b.Node("Identity", new[] { z }, outputs: new[] { ProjectorOnnxNames.ImageAligned });
        b.Output(ProjectorOnnxNames.ImageAligned, "batch", model.EmbeddingDimension);
        return Finish(b, model, "image");
    }

    /// <summary>The text graph: text_embedding [batch, text dim] (+ text_tokens [batch, tokens, d] and text_mask
    /// [batch, tokens] when the text side is token-level) -> text_aligned [batch, E].</summary>
    public static byte[] ExportText(AlignedModel model)
    {
        var net = model.Network;
        var b = new OnnxGraphBuilder("text_projector");
        var pooled = b.Input(ProjectorOnnxNames.TextEmbedding, "batch", model.TextDimension);
        string u;
        if (net.TextLocal != null)
        {
            var tokens = b.Input(ProjectorOnnxNames.TextTokens, "batch", "tokens", model.TextTokenDimension!.Value);
            var mask = b.Input(ProjectorOnnxNames.TextMask, "batch", "tokens");
            var q = Piece(b, net.TextLocal, tokens, "text_local");
            var last = b.ConstantInt64("mask_axis", new long[] { -1 }, 1);
            var mask3 = b.Op("Unsqueeze", mask, last);
            var masked = b.Op("Mul", q, mask3);
            var axis1 = b.ConstantInt64("token_axis", new long[] { 1 }, 1);
            var total = b.Op("ReduceSum", new[] { masked, axis1 }, new Dictionary<string, object> { ["keepdims"] = 0L });
            var count = b.Op("ReduceSum", new[] { mask, axis1 }, new Dictionary<string, object> { ["keepdims"] = 1L });
            var one = b.Constant("one", new[] { 1f }, 1);
            u = b.Op("Div", total, b.Op("Max", count, one));
        }
        else u = pooled;
        var z = b.L2Normalize(Piece(b, net.TextGlobal, u, "text_global"));
        b.Node("Identity", new[] { z }, outputs: new[] { ProjectorOnnxNames.TextAligned });
        b.Output(ProjectorOnnxNames.TextAligned, "batch", model.EmbeddingDimension);
        return Finish(b, model, "text");
    }

    private static byte[] Finish(OnnxGraphBuilder b, AlignedModel model, string side)
    {
        var proto = b.Build(docString: $"MLNet.Align {side} projector ({model.Projector.ImageLocal}/{model.Projector.ImageGlobal}/{model.Projector.TextLocal}/{model.Projector.TextGlobal}, E={model.EmbeddingDimension})");
        OnnxGraphBuilder.AddMetadata(proto, "mlnet_align.temperature", model.Temperature.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        OnnxGraphBuilder.AddMetadata(proto, "mlnet_align.embedding_dimension", model.EmbeddingDimension.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return Google.Protobuf.MessageExtensions.ToByteArray(proto);
    }

    private static string Piece(OnnxGraphBuilder b, nn.Module<Tensor, Tensor> piece, string x, string name) => piece switch
    {
        Identity => x,
        Linear l => EmitLinear(b, l, x, name),
        MlpHead m => EmitMlp(b, m, x, name),
        TokenProjector t => EmitToken(b, t, x, name),
        AnchorProjector a => EmitAnchors(b, a, x, name),
        _ => throw new NotSupportedException($"Cannot export projector piece {piece.GetType().Name} ({name})."),
    };

    private static float[] Values(Tensor t)
    {
        using var c = t.detach().contiguous().cpu();
        return c.data<float>().ToArray();
    }

    private static string EmitLinear(OnnxGraphBuilder b, Linear l, string x, string name)
    {
        var w = l.weight!;
        return b.Linear(x, Values(w), l.bias is null ? null : Values(l.bias), (int)w.shape[0], (int)w.shape[1], name);
    }

    private static string EmitLayerNorm(OnnxGraphBuilder b, LayerNorm n, string x, string name)
        => b.LayerNorm(x, Values(n.weight!), Values(n.bias!), LayerNormEpsilon, name);

    private static string EmitMlp(OnnxGraphBuilder b, MlpHead m, string x, string name)
    {
        var p = EmitLinear(b, m.proj, x, name + ".proj");
        var f = EmitLinear(b, m.fc, b.Gelu(p), name + ".fc");
        return EmitLayerNorm(b, m.norm, b.Op("Add", f, p), name + ".norm");
    }

    // ASIF: normalize(x - mean) A^T, entries below the row's k-th largest and negatives set to 0, the rest ^ p.
    private static string EmitAnchors(OnnxGraphBuilder b, AnchorProjector a, string x, string name)
    {
        int n = (int)a.anchors.shape[0], d = (int)a.anchors.shape[1];
        var centred = b.Op("Sub", x, b.Constant(name + ".mean", Values(a.mean), d));
        var unit = b.L2Normalize(centred);
        var anchorsT = new float[n * d]; // [d, N] for MatMul
        var rows = Values(a.anchors);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) anchorsT[j * n + i] = rows[i * d + j];
        var s = b.Op("MatMul", unit, b.Constant(name + ".anchors_t", anchorsT, d, n));
        var k = b.ConstantInt64(name + ".k", new long[] { a.TopK }, 1);
        var top = b.Node("TopK", new[] { s, k }, outputCount: 2, attributes: new Dictionary<string, object> { ["axis"] = -1L, ["largest"] = 1L, ["sorted"] = 1L });
        var kth = b.Op("Slice", top[0], b.ConstantInt64(name + ".kth_start", new long[] { a.TopK - 1 }, 1),
            b.ConstantInt64(name + ".kth_end", new long[] { a.TopK }, 1), b.ConstantInt64(name + ".kth_axis", new long[] { -1 }, 1));
        var kept = b.Op("GreaterOrEqual", s, kth);
        var powered = b.Op("Pow", b.Op("Relu", s), b.Constant(name + ".power", new[] { (float)a.Power }, 1));
        return b.Op("Where", kept, powered, b.Constant(name + ".zero", new[] { 0f }, 1));
    }

    private static string EmitToken(OnnxGraphBuilder b, TokenProjector t, string x, string name)
    {
        var h = EmitLayerNorm(b, t.norm, x, name + ".norm");
        var lin = EmitLinear(b, t.linear, h, name + ".linear");
        var nl = EmitLinear(b, t.fc2, b.Gelu(EmitLinear(b, t.fc1, h, name + ".fc1")), name + ".fc2");
        return b.Op("Add", lin, nl);
    }
}
