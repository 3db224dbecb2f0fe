using MLNet.Align.Demo;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;

namespace MLNet.Align.Tests.Demo;

/// <summary>The demo's stage-1-vs-stage-3 statistics and its photo retrieval check.</summary>
public class DemoStageTests
{
    [Fact]
    public void Spearman_matches_hand_computed_values_with_and_without_ties()
    {
        // y ranks with a tie: [1, 2, 3.5, 5, 3.5]; rho = 8 / sqrt(10 * 9.5).
        Assert.Equal(8 / Math.Sqrt(95), RankCorrelation.Spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 12);
        // No ties: 1 - 6 * sum d^2 / (n (n^2 - 1)) with sum d^2 = 12, n = 6.
        Assert.Equal(1 - 6.0 * 12 / 210, RankCorrelation.Spearman([0.69, 0.67, 0.49, 0.48, 0.37, 0.36], [0.2, 0.25, 0.1, 0.15, 0.05, 0.12]), 12);
        Assert.Equal(1.0, RankCorrelation.Spearman([1, 2, 3], [10, 20, 300]), 12);
        Assert.Equal(-1.0, RankCorrelation.Spearman([1, 2, 3], [3, 2, 1]), 12);
        Assert.True(double.IsNaN(RankCorrelation.Spearman([1, 2, 3], [4, 4, 4])));
        Assert.Equal([1.0, 2.5, 2.5, 4.0], RankCorrelation.Ranks([1, 5, 5, 9]));
    }

    [Fact]
    public void Spearman_rejects_mismatched_or_too_short_inputs()
    {
        Assert.Contains("3 x values vs 2 y values", Assert.Throws<ArgumentException>(() => RankCorrelation.Spearman([1, 2, 3], [1, 2])).Message);
        Assert.Contains("at least 2 values, got 1", Assert.Throws<ArgumentException>(() => RankCorrelation.Spearman([1], [1])).Message);
    }

    [Fact]
    public void Columns_slices_each_layer_out_of_the_concatenated_taps()
    {
        var m = new EmbeddingMatrix([1, 2, 3, 4, 5, 6, 7, 8], 2, 4);
        var s = m.SelectColumns(1, 2);
        Assert.Equal((2, 2), (s.Rows, s.Columns));
        Assert.Equal([2f, 3f, 6f, 7f], s.Data);
        Assert.Contains("Columns [3, 5) are not inside [0, 4)", Assert.Throws<ArgumentOutOfRangeException>(() => m.SelectColumns(3, 2)).Message);
    }

    [Fact]
    public void Photo_check_is_scored_for_every_method_and_enters_the_ablation_row()
    {
        var rng = new Random(3);
        EmbeddingMatrix Rand(int r, int c) => new(Enumerable.Range(0, r * c).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), r, c);
        var trainImg = Rand(60, 8); var trainTxt = Rand(60, 6);
        var map = LeastSquaresMap.Fit(trainImg, trainTxt);
        var task = new LabelledTask("set", Rand(10, 8), Enumerable.Range(0, 10).Select(i => i % 2).ToArray(), ["a", "b"], Rand(2, 6), [0, 1]);
        var held = new RetrievalTask(Rand(5, 8), Rand(5, 6), [0, 1, 2, 3, 4]);
        var photo = new RetrievalTask(Rand(4, 8), Rand(8, 6), [0, 0, 1, 1, 2, 2, 3, 3]);
        var sets = new Dictionary<string, LabelledTask> { ["set"] = task };
        var without = new DemoEval(sets, [task], held, trainImg);
        var with = new DemoEval(sets, [task], held, trainImg, photo);
        Assert.False(without.HasPhoto);
        Assert.DoesNotContain(DemoEval.PhotoKey, without.Score(map).Retrieval.Keys);
        var s = with.Score(map);
        var expected = ProjectorEvaluation.Retrieval(map, photo.Images, photo.Captions, photo.CaptionImage);
        Assert.Equal(expected.ImageToText.R1, s.Retrieval[DemoEval.PhotoKey].ImageToText.R1);
        Assert.Equal(expected.TextToImage.R5, s.Retrieval[DemoEval.PhotoKey].TextToImage.R5);
        // Adding the photo check leaves every other score unchanged.
        Assert.Equal(without.Score(map).Retrieval["heldout"].ImageToText.R1, s.Retrieval["heldout"].ImageToText.R1);
        var row = DemoEval.AblationRow("x", "d", [s, s]);
        Assert.Equal((expected.ImageToText.R1 + expected.TextToImage.R1) / 2, row.Mean["photo_r1"], 12);
        Assert.Equal(0, row.Std["photo_r1"]);
        Assert.Equal(8, row.N[DemoEval.PhotoKey]);
        Assert.Contains("photo R@1", DemoEval.RowLine(row));
    }

    [Fact]
    public void Prompt_variants_give_both_class_vector_conventions_with_and_without_glosses()
    {
        var rng = new Random(5);
        EmbeddingMatrix Rand(int r, int c) => new(Enumerable.Range(0, r * c).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), r, c);
        var trainImg = Rand(60, 8);
        var map = LeastSquaresMap.Fit(trainImg, Rand(60, 6));
        var images = Rand(30, 8); var labels = Enumerable.Range(0, 30).Select(i => i % 3).ToArray();
        var prompts = Rand(6, 6); int[] promptClass = [0, 0, 1, 1, 2, 2];
        var gloss = EmbeddingMatrix.Concat([prompts, Rand(3, 6)]); int[] glossClass = [.. promptClass, 0, 1, 2];
        var plain = new LabelledTask("a", images, labels, ["x", "y", "z"], prompts, promptClass);
        var withGloss = plain with { Name = "b", GlossPrompts = gloss, GlossPromptClass = glossClass };
        var ev = new DemoEval(new Dictionary<string, LabelledTask> { ["a"] = plain, ["b"] = withGloss }, [plain], new RetrievalTask(Rand(4, 8), Rand(4, 6), [0, 1, 2, 3]), trainImg);
        var v = ev.PromptVariants(map);
        Assert.Equal(2, v["a"].Count);
        Assert.Equal(4, v["b"].Count);
        Assert.Equal(ev.ZeroShot(map, "a").Top1, v["a"][DemoEval.PromptVariantNames[0]]);
        Assert.Equal(ProjectorEvaluation.ZeroShot(map, images, labels, prompts, promptClass, ["x", "y", "z"], renormalizeClasses: true).Top1, v["a"][DemoEval.PromptVariantNames[1]]);
        Assert.Equal(ProjectorEvaluation.ZeroShot(map, images, labels, gloss, glossClass, ["x", "y", "z"]).Top1, v["b"][DemoEval.PromptVariantNames[2]]);
        Assert.Equal(ProjectorEvaluation.ZeroShot(map, images, labels, gloss, glossClass, ["x", "y", "z"], renormalizeClasses: true).Top1, v["b"][DemoEval.PromptVariantNames[3]]);
    }
}
