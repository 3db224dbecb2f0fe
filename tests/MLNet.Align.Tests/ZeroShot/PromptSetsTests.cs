using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.ZeroShot;

public class PromptSetsTests
{
    [Fact]
    public void GlossSentencesFillEveryTemplateWithNameAndGloss()
    {
        var s = PromptSets.GlossSentences(" Ankle boot ", "footwear covering the foot and lower leg");
        Assert.Equal(PromptSets.GlossTemplates.Count, s.Count);
        Assert.Equal("a photo of a Ankle boot, footwear covering the foot and lower leg.", s[0]);
        Assert.Equal("a Ankle boot, which is footwear covering the foot and lower leg.", s[1]);
        Assert.Equal("this is a Ankle boot, footwear covering the foot and lower leg.", s[2]);
        Assert.All(s, x => Assert.DoesNotContain("{", x));
        Assert.Equal(s.Count, s.Distinct().Count());
        Assert.Throws<ArgumentException>(() => PromptSets.GlossSentences("boot", " "));
    }

    [Fact]
    public void WordNetDescribesTheClassesFoundAndReportsTheRest()
    {
        using var x = WordNetExcerpt.Clothing();
        string[] classes = ["Trouser", "Pullover", "Ankle boot", "T-shirt/top"];
        var r = PromptSets.WordNetLookup(classes, x.Dir);
        Assert.Equal(["Trouser", "Ankle boot", "T-shirt/top"], r.Glossed);
        Assert.Equal(["Pullover"], r.NotFound);
        Assert.Equal(["trouser", null, "boot", "t-shirt"], r.Matches.Select(m => m?.Lemma));
        Assert.Equal(PromptSets.GlossSentences("Ankle boot", "footwear covering the foot and lower leg"), r.Descriptions.For("Ankle boot"));
        Assert.Empty(r.Descriptions.For("Pullover"));
        Assert.Equal(r.Descriptions.Classes.Order(), PromptSets.WordNet(classes, x.Dir).Classes.Order());
        Assert.Throws<DirectoryNotFoundException>(() => PromptSets.WordNet(classes, Path.Combine(x.Dir, "missing")));
    }

    [Fact]
    public void MergeKeepsBothSetsSentencesInOrder()
    {
        var a = new ClassDescriptions(new Dictionary<string, IReadOnlyList<string>> { ["cat"] = ["a1"], ["dog"] = ["d1"] });
        var b = new ClassDescriptions(new Dictionary<string, IReadOnlyList<string>> { ["cat"] = ["b1", "b2"], ["owl"] = ["o1"] });
        var m = PromptSets.Merge(a, b);
        Assert.Equal(["a1", "b1", "b2"], m.For("cat"));
        Assert.Equal(["d1"], m.For("dog"));
        Assert.Equal(["o1"], m.For("owl"));
    }

    /// <summary>The builder with WordNet descriptions: glossed classes average templates + gloss sentences, others the
    /// templates only; the paper's mean and open_clip's renormalised mean differ for every multi-sentence class.</summary>
    [Fact]
    public void BuilderAveragesTemplatesAndGlossSentencesUnderBothConventions()
    {
        using var x = WordNetExcerpt.Clothing();
        var text = FixtureFeatures.MiniLM;
        var projector = new SeededLinearProjector();
        var tpl = PromptTemplates.FromLines(["a photo of a {}.", "an icon of a {}."]);
        string[] classes = ["trouser", "Pullover", "Ankle boot"];
        var desc = PromptSets.WordNet(classes, x.Dir);
        var mean = ClassEmbeddingBuilder.Build(classes, tpl, text, projector, desc);
        var renorm = ClassEmbeddingBuilder.Build(classes, tpl, text, projector, desc, new ClassEmbeddingOptions { Renormalize = true });
        var plainOnly = ClassEmbeddingBuilder.Build(classes, tpl, text, projector);
        int g = PromptSets.GlossTemplates.Count;
        Assert.Equal([2 + g, 2, 2 + g], mean.SentenceCounts);
        Assert.False(mean.Renormalized);
        Assert.True(renorm.Renormalized);

        for (int c = 0; c < classes.Length; c++)
        {
            var sentences = tpl.Apply(classes[c]).Concat(desc.For(classes[c])).ToArray();
            var aligned = projector.ProjectTexts(text.EncodeBatch(sentences).Pooled);
            var expected = new float[aligned.Columns];
            for (int s = 0; s < aligned.Rows; s++)
                for (int j = 0; j < expected.Length; j++) expected[j] += aligned.Row(s)[j] / aligned.Rows;
            double norm = Math.Sqrt(expected.Sum(v => (double)v * v));
            Assert.True(norm < 0.99, $"class {classes[c]}: the mean of {aligned.Rows} distinct unit vectors should be shorter than 1, got {norm}");
            for (int j = 0; j < expected.Length; j++)
            {
                Assert.Equal(expected[j], mean.Matrix.Row(c)[j], 1e-5);
                Assert.Equal(expected[j] / norm, renorm.Matrix.Row(c)[j], 1e-5);
            }
            double gap = 0, fromPlain = 0;
            for (int j = 0; j < expected.Length; j++)
            {
                gap = Math.Max(gap, Math.Abs(mean.Matrix.Row(c)[j] - renorm.Matrix.Row(c)[j]));
                fromPlain = Math.Max(fromPlain, Math.Abs(mean.Matrix.Row(c)[j] - plainOnly.Matrix.Row(c)[j]));
            }
            Assert.True(gap > 1e-3, $"class {classes[c]}: mean and renormalised mean should differ, max gap {gap}");
            if (desc.For(classes[c]).Count > 0) Assert.True(fromPlain > 1e-3, $"class {classes[c]}: the gloss sentences should move the class vector");
            else Assert.True(fromPlain < 1e-5, $"class {classes[c]} has no gloss: its vector is the templates' alone (max gap {fromPlain})");
        }
    }
}
