using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Encoders;

/// <summary>
/// The paper's configuration on the generated stand-ins (ViT tokens + byte-level BPE text, <see cref="StandInKit"/>):
/// encode the 56 fixture pairs with tokens, train the paper's token projectors (small widths), check the ONNX export
/// against TorchSharp, and run retrieval; batching must not change any encoder output.
/// </summary>
public class StandInFullPathTests(ITestOutputHelper output)
{
    private static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    [Fact]
    public void Vit_standin_batches_equal_single_images_and_pools_as_asked()
    {
        var paths = FixtureFeatures.ImagePaths.Take(5).ToArray();
        var batched = StandInKit.Vit.EncodeBatch(paths, withTokens: true); // batch size 8: one run of 5
        Assert.Equal(64, batched.Pooled.Columns);
        Assert.Equal((256, 64), (batched.Tokens!.MaxTokens, batched.Tokens.Dimension));
        using var single = new OnnxImageEncoder(StandInKit.VitOptions(batchSize: 1));
        var one = single.EncodeBatch(paths, withTokens: true);
        double pooledDiff = MaxAbsDiff(batched.Pooled.Data, one.Pooled.Data), tokenDiff = MaxAbsDiff(batched.Tokens.Data, one.Tokens!.Data);
        output.WriteLine($"ViT batch-5 vs 5 x batch-1: pooled max diff {pooledDiff:E2}, tokens {tokenDiff:E2}");
        Assert.True(pooledDiff <= 1e-5 && tokenDiff <= 1e-5, $"pooled {pooledDiff:E2}, tokens {tokenDiff:E2}");

        // mean and cls+mean pooling are made from the same patch tokens (CLS excluded).
        using var mean = new OnnxImageEncoder(StandInKit.VitOptions(ImagePooling.MeanPatch));
        using var concat = new OnnxImageEncoder(StandInKit.VitOptions(ImagePooling.ClsMeanPatch));
        var m = mean.EncodeBatch(paths[..1]).Pooled;
        var c = concat.EncodeBatch(paths[..1]).Pooled;
        var expectedMean = new float[64];
        for (int t = 0; t < 256; t++) System.Numerics.Tensors.TensorPrimitives.Add(expectedMean, batched.Tokens.Item(0).Slice(t * 64, 64), expectedMean);
        System.Numerics.Tensors.TensorPrimitives.Divide(expectedMean, 256f, expectedMean);
        Assert.True(MaxAbsDiff(expectedMean, m.Row(0)) <= 1e-5);
        Assert.Equal(128, c.Columns);
        Assert.True(MaxAbsDiff(batched.Pooled.Row(0), c.Row(0)[..64]) <= 1e-6 && MaxAbsDiff(m.Row(0), c.Row(0)[64..]) <= 1e-6);
        Assert.NotEqual(mean.Identity.Sha256, StandInKit.Vit.Identity.Sha256);
    }

    [Fact]
    public void Vit_registers_are_dropped_from_tokens_and_pooling()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vit-reg-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, StandInEncoders.Vit(new VitStandInOptions { RegisterTokens = 4 }));
        try
        {
            var o = StandInKit.VitOptions(ImagePooling.MeanPatch);
            o.ModelPath = path;
            o.RegisterTokens = 4;
            using var enc = new OnnxImageEncoder(o);
            var e = enc.EncodeBatch(FixtureFeatures.ImagePaths.Take(2).ToArray(), withTokens: true);
            Assert.Equal(256, e.Tokens!.MaxTokens); // 1 + 4 + 256 outputs, CLS and registers dropped
            o.RegisterTokens = 0;
            using var wrong = new OnnxImageEncoder(o);
            Assert.Equal(260, wrong.TokenCount);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Roberta_standin_batches_equal_single_texts()
    {
        var captions = FixtureFeatures.Captions.Take(12).ToArray();
        var batched = StandInKit.Roberta.EncodeBatch(captions, withTokens: true); // length-bucketed, padded
        using var single = new OnnxTextEncoder(StandInKit.RobertaOptions(batchSize: 1));
        var one = single.EncodeBatch(captions, withTokens: true);
        double pooledDiff = MaxAbsDiff(batched.Pooled.Data, one.Pooled.Data), tokenDiff = MaxAbsDiff(batched.Tokens!.Data, one.Tokens!.Data);
        output.WriteLine($"RoBERTa batch-12 (padded) vs 12 x batch-1: pooled max diff {pooledDiff:E2}, tokens {tokenDiff:E2}");
        Assert.True(pooledDiff <= 1e-5 && tokenDiff <= 1e-5, $"pooled {pooledDiff:E2}, tokens {tokenDiff:E2}");
        Assert.Equal(batched.Tokens.Lengths, captions.Select(t => StandInKit.Roberta.Tokenize(t).Length).ToArray());
        Assert.True(batched.Tokens.Lengths.Distinct().Count() > 1, "captions of one length do not test padding");
    }

    [Fact]
    public void Paper_token_projectors_train_export_and_retrieve_on_the_standins()
    {
        var images = StandInKit.Vit.EncodeBatch(FixtureFeatures.ImagePaths, withTokens: true);
        var texts = StandInKit.Roberta.EncodeBatch(FixtureFeatures.Captions, withTokens: true);
        var data = new InMemoryAlignmentData(images.Pooled, texts.Pooled, images.Tokens, texts.Tokens);
        var options = new AlignmentOptions
        {
            Projector = ProjectorOptions.Paper(32),
            Training = new AlignmentTrainingOptions { Epochs = 40, BatchSize = 16, WarmupSteps = 5, LearningRate = 3e-3, ValidationFraction = 0, TorchThreads = 1 },
        };
        using var model = new AlignmentTrainer(options) { ImageEncoder = StandInKit.Vit.Identity, TextEncoder = StandInKit.Roberta.Identity }
            .Fit(data).Model;
        Assert.True(model.UsesImageTokens && model.UsesTextTokens);

        // ONNX export parity (image: pooled CLS + 256 patch tokens; text: tokens + mask).
        int n = 20;
        var pooled = images.Pooled.SelectRows(Enumerable.Range(0, n).ToArray());
        var imgTokens = images.Tokens!.Data.AsSpan(0, n * 256 * 64).ToArray();
        var expectedImage = model.ProjectImages(pooled, new TokenTensor(imgTokens, n, 256, 64, Enumerable.Repeat(256, n).ToArray())).Data;
        float[] onnxImage;
        using (var s = new InferenceSession(model.ExportImageProjectorOnnx()))
        using (var r = s.Run([
            NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.ImageEmbedding, new DenseTensor<float>(pooled.Data, [n, 64])),
            NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.ImageTokens, new DenseTensor<float>(imgTokens, [n, 256, 64]))]))
            onnxImage = r.Single().AsEnumerable<float>().ToArray();
        double imageParity = MaxAbsDiff(expectedImage, onnxImage);

        var t = texts.Tokens!;
        var expectedText = model.ProjectTexts(texts.Pooled, t).Data;
        var mask = new float[t.Count * t.MaxTokens];
        for (int i = 0; i < t.Count; i++) mask.AsSpan(i * t.MaxTokens, t.Lengths[i]).Fill(1f);
        float[] onnxText;
        using (var s = new InferenceSession(model.ExportTextProjectorOnnx()))
        using (var r = s.Run([
            NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.TextEmbedding, new DenseTensor<float>(texts.Pooled.Data, [t.Count, 32])),
            NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.TextTokens, new DenseTensor<float>(t.Data, [t.Count, t.MaxTokens, 32])),
            NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.TextMask, new DenseTensor<float>(mask, [t.Count, t.MaxTokens]))]))
            onnxText = r.Single().AsEnumerable<float>().ToArray();
        double textParity = MaxAbsDiff(expectedText, onnxText);
        output.WriteLine($"ONNX export parity: image max |diff| {imageParity:E2}, text {textParity:E2}");
        Assert.True(imageParity <= 1e-5 && textParity <= 1e-5, $"image {imageParity:E2}, text {textParity:E2}");

        // Retrieval on the (training) pairs: trained token projectors fit them well above chance (1/56).
        var result = ProjectorEvaluation.Retrieval(model, images.Pooled, texts.Pooled, Enumerable.Range(0, 56).ToArray(),
            imageTokens: images.Tokens, captionTokens: texts.Tokens);
        output.WriteLine($"retrieval (train pairs, n = 56): i->t R@1 {result.ImageToText.R1:P1} R@5 {result.ImageToText.R5:P1}, t->i R@1 {result.TextToImage.R1:P1} R@5 {result.TextToImage.R5:P1}");
        Assert.True(result.ImageToText.R5 > 3 * 5.0 / 56 && result.TextToImage.R5 > 3 * 5.0 / 56, "no better than 3x chance");
    }
}
