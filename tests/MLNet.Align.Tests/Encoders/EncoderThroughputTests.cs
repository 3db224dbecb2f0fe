using System.Diagnostics;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Encoders;

/// <summary>Batched encoding equals row-at-a-time encoding on the 56 fixture pairs; prints the rates of both.</summary>
[Collection("Encoders")]
public class EncoderThroughputTests(EncoderFixture fx, ITestOutputHelper output)
{
    [Fact]
    public void Batched_EqualsRowAtATime_OnAllFixturePairs()
    {
        fx.ResNet.EncodeBatch(fx.ImagePaths.Take(2).ToArray()); // warm-up
        var sw = Stopwatch.StartNew();
        var images = fx.ResNet.EncodeBatch(fx.ImagePaths);
        double imgBatched = fx.ImagePaths.Length / sw.Elapsed.TotalSeconds;
        sw.Restart();
        const int singles = 12;
        for (int i = 0; i < singles; i++)
            Assert.True(EncoderFixture.MaxAbsDiff(fx.ResNet.EncodeBatch([fx.ImagePaths[i]]).Pooled.Row(0), images.Pooled.Row(i)) <= 1e-4f);
        double imgSingle = singles / sw.Elapsed.TotalSeconds;

        fx.MiniLM.EncodeBatch(fx.Captions.Take(4).ToArray());
        sw.Restart();
        var texts = fx.MiniLM.EncodeBatch(fx.Captions);
        double txtBatched = fx.Captions.Length / sw.Elapsed.TotalSeconds;
        sw.Restart();
        for (int i = 0; i < fx.Captions.Length; i++)
            Assert.True(EncoderFixture.MaxAbsDiff(fx.MiniLM.EncodeBatch([fx.Captions[i]]).Pooled.Row(0), texts.Pooled.Row(i)) <= 1e-4f);
        double txtSingle = fx.Captions.Length / sw.Elapsed.TotalSeconds;
        output.WriteLine($"ResNet-18: {imgBatched:F1} images/s batched (16), {imgSingle:F1} images/s one per call; " +
            $"MiniLM: {txtBatched:F0} sentences/s batched (32, length-bucketed), {txtSingle:F0} sentences/s one per call");
    }
}
