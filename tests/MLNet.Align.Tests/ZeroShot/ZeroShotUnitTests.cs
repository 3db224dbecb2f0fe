using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.ZeroShot;

public class PromptTemplateTests
{
    [Fact]
    public void BuiltInSetsHaveExpectedSizesAndFill()
    {
        Assert.Equal(80, PromptTemplates.OpenAiImageNet.Count);
        Assert.Equal(80, PromptTemplates.OpenAiImageNet.Distinct().Count());
        Assert.Equal(7, PromptTemplates.SimpleImageNet.Count);
        Assert.All(PromptTemplates.SimpleImageNet, t => Assert.Contains(t, PromptTemplates.OpenAiImageNet));
        Assert.Equal("a photo of a cat.", PromptTemplates.Photo.Format(0, "cat"));
        Assert.Equal("a bad photo of a tench.", PromptTemplates.OpenAiImageNet.Apply("tench")[0]);
    }

    [Fact]
    public void ParsesFileSkippingCommentsAndRejectsMissingPlaceholder()
    {
        var t = PromptTemplates.FromLines(["# comment", "", "  a photo of a {}.  ", "{} art"], "t.txt");
        Assert.Equal(["a photo of a {}.", "{} art"], t);
        var ex = Assert.Throws<ArgumentException>(() => PromptTemplates.FromLines(["a photo of a {}.", "# x", "a photo of a cat."], "bad.txt"));
        Assert.Contains("bad.txt, line 3", ex.Message);
        Assert.Contains("lacks the class placeholder", ex.Message);
        var ex2 = Assert.Throws<ArgumentException>(() => PromptTemplates.FromLines(["a photo of a {c}."], "c.txt"));
        Assert.Contains("c.txt, line 1", ex2.Message);
        Assert.Throws<ArgumentException>(() => PromptTemplates.FromLines(["# only comments"], "e.txt"));
        Assert.Throws<FileNotFoundException>(() => PromptTemplates.Load("/no/such/templates.txt"));
        Assert.Throws<ArgumentException>(() => PromptTemplates.BuiltIn("nope"));
    }

    [Fact]
    public void SaveAndLoadRoundTrip()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tpl-{Guid.NewGuid():N}.txt");
        PromptTemplates.IconsAndClipArt.Save(path);
        Assert.Equal(PromptTemplates.IconsAndClipArt, PromptTemplates.Load(path));
        File.Delete(path);
    }
}

public class ClassEmbeddingTests(ZeroShotFixture fx) : IClassFixture<ZeroShotFixture>
{
    [Fact]
    public void AverageMatchesManualMeanOfNormalisedSentenceEmbeddings()
    {
        var text = FixtureFeatures.MiniLM;
        var tpl = PromptTemplates.FromLines(["a photo of a {}.", "an icon of a {}.", "a drawing of the {}."]);
        var desc = new ClassDescriptions(new Dictionary<string, IReadOnlyList<string>> { ["violin"] = ["a string instrument played with a bow."] });
        string[] classes = ["apple", "violin"];
        var plain = ClassEmbeddingBuilder.Build(classes, tpl, text, fx.Projector, desc, new ClassEmbeddingOptions { BatchSize = 2 });
        var renorm = ClassEmbeddingBuilder.Build(classes, tpl, text, fx.Projector, desc, new ClassEmbeddingOptions { Renormalize = true });
        Assert.Equal([3, 4], plain.SentenceCounts);

        for (int c = 0; c < classes.Length; c++)
        {
            var sentences = tpl.Apply(classes[c]).Concat(desc.For(classes[c])).ToArray();
            var aligned = fx.Projector.ProjectTexts(text.EncodeBatch(sentences).Pooled);
            var mean = new float[aligned.Columns];
            for (int s = 0; s < aligned.Rows; s++)
                for (int j = 0; j < mean.Length; j++) mean[j] += aligned.Row(s)[j] / aligned.Rows;
            double norm = Math.Sqrt(mean.Sum(v => (double)v * v));
            Assert.True(norm < 0.999, $"mean of distinct unit vectors should have norm < 1, got {norm}");
            for (int j = 0; j < mean.Length; j++)
            {
                Assert.Equal(mean[j], plain.Matrix.Row(c)[j], 1e-5);
                Assert.Equal(mean[j] / norm, renorm.Matrix.Row(c)[j], 1e-5);
            }
        }
    }

    [Fact]
    public void PaddingRepeatsFirstSentence()
    {
        var text = FixtureFeatures.MiniLM;
        var tpl = PromptTemplates.FromLines(["a photo of a {}.", "an icon of a {}."]);
        var padded = ClassEmbeddingBuilder.Build(["apple"], tpl, text, fx.Projector, null, new ClassEmbeddingOptions { PadSentencesTo = 5 });
        Assert.Equal([5], padded.SentenceCounts);
        var a = fx.Projector.ProjectTexts(text.EncodeBatch(["a photo of a apple.", "an icon of a apple."]).Pooled);
        for (int j = 0; j < a.Columns; j++) Assert.Equal((4 * a.Row(0)[j] + a.Row(1)[j]) / 5, padded.Matrix.Row(0)[j], 1e-5);
    }

    [Fact]
    public void BadClassListsAreRejected()
    {
        var text = new CountingTextEncoder(FixtureFeatures.MiniLM);
        var e1 = Assert.Throws<ArgumentException>(() => ClassEmbeddingBuilder.Build([], PromptTemplates.Photo, text, fx.Projector));
        Assert.Contains("empty", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => ClassEmbeddingBuilder.Build(["cat", "dog", "cat"], PromptTemplates.Photo, text, fx.Projector));
        Assert.Contains("duplicate class name 'cat' at positions 0 and 2", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => ClassEmbeddingBuilder.Build(["cat"], null, text, fx.Projector,
            new ClassDescriptions(new Dictionary<string, IReadOnlyList<string>> { ["dog"] = ["a dog."] })));
        Assert.Contains("'cat' has no sentence", e3.Message);
        Assert.Equal(0, text.Calls);
        var file = Path.Combine(Path.GetTempPath(), $"classes-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(file, ["cat", "# c", "dog", "cat"]);
        var e4 = Assert.Throws<ArgumentException>(() => ClassList.Load(file));
        Assert.Contains("lines 1 and 4", e4.Message);
        File.Delete(file);
    }
}

public class ZeroShotHeadTests(ZeroShotFixture fx) : IClassFixture<ZeroShotFixture>
{
    [Fact]
    public void HeadOnnxEqualsManagedComputation()
    {
        // Real aligned inputs: projected MiniLM embeddings of captions (the head does not care about the modality).
        var text = FixtureFeatures.MiniLM;
        var queries = fx.Projector.ProjectTexts(text.EncodeBatch(["a red apple", "a violin and a bow", "the full moon at night", "a bunch of grapes", "a monkey face"]).Pooled);
        const float scale = 37.5f;
        var bytes = ZeroShotHead.ExportOnnx(fx.Classes, scale);
        using var session = new InferenceSession(bytes);
        using var result = session.Run([NamedOnnxValue.CreateFromTensor("image_aligned", new DenseTensor<float>(queries.Data, [queries.Rows, queries.Columns]))]);
        var onnxScores = result.First(r => r.Name == "Score").AsTensor<float>().ToArray();
        var onnxLabels = result.First(r => r.Name == ZeroShotHeadNames.PredictedClass).AsTensor<string>().ToArray();
        var (scores, predicted) = ZeroShotHead.Score(queries, fx.Classes, scale);
        for (int i = 0; i < scores.Data.Length; i++) Assert.True(Math.Abs(scores.Data[i] - onnxScores[i]) < 1e-6, $"score {i}: {scores.Data[i]} vs {onnxScores[i]}");
        for (int i = 0; i < queries.Rows; i++) Assert.Equal(fx.Classes.ClassNames[predicted[i]], onnxLabels[i]);
        for (int i = 0; i < queries.Rows; i++) Assert.Equal(1f, scores.Row(i).ToArray().Sum(), 1e-5);

        var model = global::Onnx.ModelProto.Parser.ParseFrom(bytes);
        var slot = model.Graph.Node.Single(n => n.Name == "mlnet.Score.SlotNames");
        Assert.Equal(fx.Classes.ClassNames, slot.Attribute.Single(a => a.Name == "keys_strings").Strings.Select(s => s.ToStringUtf8()));
        Assert.Throws<ArgumentException>(() => ZeroShotHead.ExportOnnx(fx.Classes, 0f));
    }
}
