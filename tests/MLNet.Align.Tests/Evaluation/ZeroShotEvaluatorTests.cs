using MLNet.Align.Evaluation;
using static MLNet.Align.Tests.Evaluation.TestMatrices;

namespace MLNet.Align.Tests.Evaluation;

public class ZeroShotEvaluatorTests
{
    [Fact]
    public void KnownCaseGivesKnownAccuraciesAndConfusion()
    {
        var classes = M(3, 3, 1, 0, 0, 0, 1, 0, 0, 0, 1);
        var images = M(5, 3,
            1f, 0f, 0f,      // label 0 -> 0
            0.9f, 0.1f, 0f,  // label 1 -> 0
            0f, 1f, 0f,      // label 1 -> 1
            0f, 0.2f, 1f,    // label 2 -> 2
            0.5f, 0.6f, 0.7f); // label 0 -> 2
        var r = ZeroShotEvaluator.Evaluate(images, classes, new[] { 0, 1, 1, 2, 0 }, new[] { "a", "b", "c" });
        Assert.Equal(5, r.N);
        Assert.Equal(0.6, r.Top1, 12);
        Assert.Equal(1.0, r.Top5, 12); // C = 3 < 5: every true class is in the top 3
        Assert.Equal(new[] { 0, 0, 1, 2, 2 }, r.Predictions);
        Assert.Equal(new[] { 1, 0, 1 }, r.Confusion[0]);
        Assert.Equal(new[] { 1, 1, 0 }, r.Confusion[1]);
        Assert.Equal(new[] { 0, 0, 1 }, r.Confusion[2]);
        Assert.Equal(new double?[] { 0.5, 0.5, 1.0 }, r.PerClassAccuracy);
        Assert.Equal(2.0 / 3, r.MeanPerClassAccuracy, 12);
        Assert.Equal(new[] { "a", "b", "c" }, r.ClassNames);
    }

    [Fact]
    public void TopFiveMissesAClassRankedSixth()
    {
        var classes = M(6, 6, Enumerable.Range(0, 36).Select(i => i % 7 == 0 ? 1f : 0f).ToArray()); // identity
        var images = M(2, 6, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f);
        var r = ZeroShotEvaluator.Evaluate(images, classes, new[] { 5, 4 });
        Assert.Equal(0.0, r.Top1);
        Assert.Equal(0.5, r.Top5, 12);
        Assert.Null(r.PerClassAccuracy[0]);
        Assert.Equal(0.0, r.MeanPerClassAccuracy);
    }

    [Fact]
    public void ClassEmbeddingsAverageNormalisedPromptsWithoutRenormalising()
    {
        var p = new NormalizeOnlyProjector(2);
        // class 0: prompts (2,0) and (0,3) -> unit (1,0),(0,1) -> mean (0.5, 0.5), norm 0.707 (not renormalised)
        var cls = ProjectorEvaluation.BuildClassEmbeddings(p, M(3, 2, 2, 0, 0, 3, 0, 1), new[] { 0, 0, 1 }, 2);
        Assert.Equal(new[] { 0.5f, 0.5f, 0f, 1f }, cls.Data);
        var renorm = ProjectorEvaluation.BuildClassEmbeddings(p, M(3, 2, 2, 0, 0, 3, 0, 1), new[] { 0, 0, 1 }, 2, renormalize: true);
        Assert.Equal(MathF.Sqrt(0.5f), renorm.Data[0], 6);
        var ex = Assert.Throws<ArgumentException>(() => ProjectorEvaluation.BuildClassEmbeddings(p, M(3, 2, 2, 0, 0, 3, 0, 1), new[] { 0, 0, 0 }, 2));
        Assert.Contains("Class 1 has no prompt", ex.Message);

        var zs = ProjectorEvaluation.ZeroShot(p, M(2, 2, 1, 0.9f, 0.1f, 1), new[] { 0, 1 }, M(3, 2, 2, 0, 0, 3, 0, 1), new[] { 0, 0, 1 }, new[] { "x", "y" });
        Assert.Equal(new[] { 0, 1 }, zs.Predictions);
    }

    [Fact]
    public void BadLabelIsNamed()
    {
        var ex = Assert.Throws<ArgumentException>(() => ZeroShotEvaluator.Evaluate(M(1, 2, 1, 0), M(2, 2, 1, 0, 0, 1), new[] { 2 }));
        Assert.Contains("Label 2 of image 0", ex.Message);
    }
}
