using System.Text.Json;
using MLNet.Align.Evaluation;
using static MLNet.Align.Tests.Evaluation.TestMatrices;

namespace MLNet.Align.Tests.Evaluation;

public class RetrievalEvaluatorTests
{
    // 3 images, 4 captions (image 0 has two). Similarities worked out by hand:
    //        c0    c1    c2    c3
    //  i0   1.00  0.80  0.00  0.60      positives of i0: c0, c3 -> best c0 rank 1
    //  i1   0.00  0.60  1.00  0.80      positive c1: c2, c3 above  -> rank 3
    //  i2   0.60  0.96  0.80  1.00      positive c2: c3, c1 above  -> rank 3
    private static readonly float[] Images = { 1f, 0f, 0f, 1f, 0.6f, 0.8f };
    private static readonly float[] Captions = { 1f, 0f, 0.8f, 0.6f, 0f, 1f, 0.6f, 0.8f };
    private static readonly int[] CaptionImage = { 0, 1, 2, 0 };

    [Fact]
    public void HandMadeCaseGivesKnownRecalls()
    {
        var r = RetrievalEvaluator.Evaluate(M(3, 2, Images), M(4, 2, Captions), CaptionImage, new[] { 2 });
        Assert.Equal(3, r.N);
        Assert.Equal(4, r.Captions);
        Assert.Equal(1.0 / 3, r.ImageToText.R1, 12);
        Assert.Equal(1.0 / 3, r.ImageToText.Recall(2), 12);
        Assert.Equal(1.0, r.ImageToText.R5, 12);
        Assert.Equal(3.0, r.ImageToText.MedianRank, 12);
        // t2i ranks (0-based): c0 -> i0 first (0); c1 -> i2 .96, i0 .8 above i1 (2); c2 -> i1 above i2 (1); c3 -> i2, i1 above i0 (2).
        Assert.Equal(0.25, r.TextToImage.R1, 12);
        Assert.Equal(0.5, r.TextToImage.Recall(2), 12);
        Assert.Equal(1.0, r.TextToImage.R10, 12);
        Assert.Equal(2.5, r.TextToImage.MedianRank, 12);
        Assert.Equal((1.0 / 3 + 1 + 1 + 0.25 + 1 + 1) / 6, r.RMean, 12);

        var json = JsonSerializer.Serialize(r);
        Assert.Contains("\"i2t\":{\"r1\":", json);
        Assert.Contains("\"t2i\":", json);
    }

    [Fact]
    public void TiesAreBrokenByIndexNotInFavourOfThePositive()
    {
        // Two identical images; the caption of image 1 ties with image 0, which sorts first.
        var r = RetrievalEvaluator.Evaluate(M(2, 2, 1f, 0f, 1f, 0f), M(2, 2, 1f, 0f, 1f, 0f), new[] { 0, 1 });
        Assert.Equal(0.5, r.TextToImage.R1, 12);
        Assert.Equal(0.5, r.ImageToText.R1, 12);
    }

    [Fact]
    public void BadInputNamesTheProblem()
    {
        var ex = Assert.Throws<ArgumentException>(() => RetrievalEvaluator.Evaluate(M(3, 2, Images), M(4, 2, Captions), new[] { 0, 1, 0, 0 }));
        Assert.Contains("Image 2 has no caption", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => RetrievalEvaluator.Evaluate(M(3, 2, Images), M(4, 2, Captions), new[] { 0, 1, 2 }));
        Assert.Contains("3 entries", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => RetrievalEvaluator.Evaluate(M(3, 2, Images), M(2, 4, Captions), new[] { 0, 1 }));
        Assert.Contains("width 2", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => RetrievalEvaluator.Evaluate(M(3, 2, Images), M(4, 2, Captions), new[] { 0, 1, 2, 7 }));
        Assert.Contains("Caption 3 points to image 7", ex.Message);
    }
}
