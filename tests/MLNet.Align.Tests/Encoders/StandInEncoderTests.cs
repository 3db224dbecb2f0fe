using Microsoft.ML.OnnxRuntime;
using MLNet.Align.Onnx;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Align.Tests.Encoders;

/// <summary>
/// The generated stand-in encoders (<see cref="StandInEncoders"/>) computed a second, independent way: the same ops
/// written with TorchSharp (conv2d, layer_norm, softmax attention, exact GELU) on the same weights. The ONNX graph
/// (run by ONNX Runtime) must match to float32 rounding.
/// </summary>
public class StandInEncoderTests
{
    private static float[] RandomInput(int count, int seed)
    {
        var r = new Random(seed);
        var v = new float[count];
        for (int i = 0; i < count; i++) v[i] = (float)(r.NextDouble() * 4 - 2);
        return v;
    }

    private static (float[] Data, long[] Shape) RunOnnx(byte[] model, params (string Name, OrtValue Value)[] inputs)
    {
        using var session = new InferenceSession(model);
        using var run = new RunOptions();
        using var outputs = session.Run(run, inputs.Select(i => i.Name).ToArray(), inputs.Select(i => i.Value).ToArray(), [session.OutputNames[0]]);
        var shape = outputs[0].GetTensorTypeAndShape().Shape;
        return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), shape);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(4, 2)] // DINOv2 "with registers" layout, two blocks
    public void Vit_onnx_matches_an_independent_torchsharp_computation(int registers, int layers)
    {
        var o = new VitStandInOptions { RegisterTokens = registers, Layers = layers };
        var bytes = StandInEncoders.Vit(o);
        var w = StandInEncoders.VitWeights(o);
        const int n = 2;
        var pixels = RandomInput(n * 3 * 224 * 224, 3);
        using var value = OrtValue.CreateTensorValueFromMemory(pixels, [n, 3, 224, 224]);
        var (onnx, shape) = RunOnnx(bytes, ("pixel_values", value));
        Assert.Equal(new long[] { n, 1 + registers + 256, 64 }, shape);

        float[] reference;
        using (var scope = NewDisposeScope())
        using (no_grad())
            reference = TorchVit(pixels, n, o, w).data<float>().ToArray();
        Assert.Equal(reference.Length, onnx.Length);
        double maxDiff = reference.Zip(onnx, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff <= 1e-4, $"max |onnx - torch| = {maxDiff:E2}");
        // Not a degenerate graph: tokens differ from each other and from image to image.
        Assert.True(Math.Abs(onnx[0] - onnx[64]) > 1e-3 && Math.Abs(onnx[64] - onnx[(1 + registers + 256) * 64 + 64]) > 1e-6);
    }

    [Fact]
    public void Roberta_onnx_matches_an_independent_torchsharp_computation_and_ignores_padding()
    {
        var o = new RobertaStandInOptions { Layers = 2 };
        var bytes = StandInEncoders.Roberta(o);
        var w = StandInEncoders.RobertaWeights(o);
        long[] ids = [50257, 32, 1310, 13, 50258, 50259, 50259, 50257, 40, 588, 262, 3797, 290, 50258];
        long[] mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1];
        using var idValue = OrtValue.CreateTensorValueFromMemory(ids, [2, 7]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, [2, 7]);
        var (onnx, shape) = RunOnnx(bytes, ("input_ids", idValue), ("attention_mask", maskValue));
        Assert.Equal(new long[] { 2, 7, 32 }, shape);
        float[] reference;
        using (var scope = NewDisposeScope())
        using (no_grad())
            reference = TorchRoberta(ids, mask, 2, 7, o, w).data<float>().ToArray();
        double maxDiff = reference.Zip(onnx, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff <= 1e-4, $"max |onnx - torch| = {maxDiff:E2}");

        // The first text alone (no padding) gives the same states on its 5 real tokens.
        using var id1 = OrtValue.CreateTensorValueFromMemory(ids[..5], [1, 5]);
        using var mask1 = OrtValue.CreateTensorValueFromMemory(mask[..5], [1, 5]);
        var (single, _) = RunOnnx(bytes, ("input_ids", id1), ("attention_mask", mask1));
        double padDiff = single.Zip(onnx.Take(5 * 32), (a, b) => Math.Abs(a - b)).Max();
        Assert.True(padDiff <= 1e-5, $"padding changed real tokens by {padDiff:E2}");
    }

    [Fact]
    public void Generation_is_deterministic_and_seed_dependent()
    {
        Assert.Equal(StandInEncoders.Vit(), StandInEncoders.Vit());
        Assert.NotEqual(StandInEncoders.Vit(), StandInEncoders.Vit(new VitStandInOptions { Seed = 15 }));
        Assert.Throws<ArgumentException>(() => StandInEncoders.Vit(new VitStandInOptions { ImageSize = 225 }));
    }

    private static Tensor T(float[] v, params long[] shape) => tensor(v, shape);

    private static Tensor TorchVit(float[] pixels, int n, VitStandInOptions o, VitStandInWeights w)
    {
        int d = o.Dimension, p = o.PatchSize;
        var x = T(pixels, n, 3, o.ImageSize, o.ImageSize);
        var conv = F.conv2d(x, T(w.PatchWeight, d, 3, p, p), T(w.PatchBias, d), strides: [p, p]);
        var tokens = conv.flatten(2).transpose(1, 2);
        var cls = T(w.ClsToken, 1, 1, d).expand(n, 1, d);
        var seq = cat([cls, tokens], 1) + T(w.PositionEmbedding, 1, 1 + o.PatchTokens, d);
        if (o.RegisterTokens > 0)
            seq = cat([seq.narrow(1, 0, 1), T(w.Registers, 1, o.RegisterTokens, d).expand(n, o.RegisterTokens, d), seq.narrow(1, 1, o.PatchTokens)], 1);
        foreach (var blk in w.Blocks)
        {
            var h = F.layer_norm(seq, [d], T(blk.Ln1Weight, d), T(blk.Ln1Bias, d), o.LayerNormEpsilon);
            seq = seq + TorchAttention(h, null, blk, d, o.Heads) * T(blk.LayerScale1!, d);
            h = F.layer_norm(seq, [d], T(blk.Ln2Weight, d), T(blk.Ln2Bias, d), o.LayerNormEpsilon);
            seq = seq + TorchMlp(h, blk, d, o.MlpRatio * d) * T(blk.LayerScale2!, d);
        }
        return F.layer_norm(seq, [d], T(w.NormWeight, d), T(w.NormBias, d), o.LayerNormEpsilon);
    }

    private static Tensor TorchRoberta(long[] ids, long[] mask, int n, int len, RobertaStandInOptions o, RobertaStandInWeights w)
    {
        int d = o.Dimension;
        var idT = tensor(ids, [n, len]);
        var maskT = tensor(mask, [n, len]);
        var positions = maskT.cumsum(1) * maskT + o.PositionPaddingIndex;
        var e = T(w.TokenEmbedding, o.VocabSize, d).index_select(0, idT.flatten()).reshape(n, len, d)
              + T(w.PositionEmbedding, o.MaxPositions, d).index_select(0, positions.flatten()).reshape(n, len, d)
              + T(w.TokenTypeEmbedding, d);
        var x = F.layer_norm(e, [d], T(w.EmbeddingLnWeight, d), T(w.EmbeddingLnBias, d), o.LayerNormEpsilon);
        var bias = ((1 - maskT.to_type(ScalarType.Float32)) * -1e9f).reshape(n, 1, 1, len);
        foreach (var blk in w.Blocks)
        {
            x = F.layer_norm(x + TorchAttention(x, bias, blk, d, o.Heads), [d], T(blk.Ln1Weight, d), T(blk.Ln1Bias, d), o.LayerNormEpsilon);
            x = F.layer_norm(x + TorchMlp(x, blk, d, o.FeedForward), [d], T(blk.Ln2Weight, d), T(blk.Ln2Bias, d), o.LayerNormEpsilon);
        }
        return x;
    }

    private static Tensor TorchAttention(Tensor x, Tensor? bias, StandInBlockWeights w, int d, int heads)
    {
        long n = x.shape[0], len = x.shape[1];
        int dh = d / heads;
        var qkv = F.linear(x, T(w.QkvWeight, 3 * d, d), T(w.QkvBias, 3 * d)).reshape(n, len, 3, heads, dh).permute(2, 0, 3, 1, 4);
        Tensor q = qkv[0], k = qkv[1], v = qkv[2];
        var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(dh);
        if (bias is not null) scores = scores + bias;
        var ctx = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(n, len, d);
        return F.linear(ctx, T(w.ProjWeight, d, d), T(w.ProjBias, d));
    }

    private static Tensor TorchMlp(Tensor x, StandInBlockWeights w, int d, int m)
        => F.linear(F.gelu(F.linear(x, T(w.Fc1Weight, m, d), T(w.Fc1Bias, m))), T(w.Fc2Weight, d, m), T(w.Fc2Bias, d));
}
