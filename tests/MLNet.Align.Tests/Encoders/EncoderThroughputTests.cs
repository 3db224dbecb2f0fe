using System.Diagnostics;
using Xunit.Abstractions;
using static MLNet.Align.Tests.Shared.FixtureFeatures;
using static MLNet.Align.Tests.Shared.Vectors;

namespace MLNet.Align.Tests.Encoders;

/// <summary>Batched encoding equals row-at-a-time encoding on the 56 fixture pairs; prints the rates of both.</summary>
[Collection("Encoders")]
public class EncoderThroughputTests(ITestOutputHelper output)
{
    [Fact]
    public void Batched_EqualsRowAtATime_OnAllFixturePairs()
    {
        ResNet18.EncodeBatch(ImagePaths.Take(2).ToArray()); // warm-up
        var sw = Stopwatch.StartNew();
        var images = ResNet18.EncodeBatch(ImagePaths);
        double imgBatched = ImagePaths.Length / sw.Elapsed.TotalSeconds;
        sw.Restart();
        const int singles = 12;
        for (int i = 0; i < singles; i++)
            Assert.True(MaxAbsDiff(ResNet18.EncodeBatch([ImagePaths[i]]).Pooled.Row(0), images.Pooled.Row(i)) <= 1e-4f);
        double imgSingle = singles / sw.Elapsed.TotalSeconds;

        MiniLM.EncodeBatch(Captions.Take(4).ToArray());
        sw.Restart();
        var texts = MiniLM.EncodeBatch(Captions);
        double txtBatched = Captions.Length / sw.Elapsed.TotalSeconds;
        sw.Restart();
        for (int i = 0; i < Captions.Length; i++)
            Assert.True(MaxAbsDiff(MiniLM.EncodeBatch([Captions[i]]).Pooled.Row(0), texts.Pooled.Row(i)) <= 1e-4f);
        double txtSingle = Captions.Length / sw.Elapsed.TotalSeconds;
        output.WriteLine($"ResNet-18: {imgBatched:F1} images/s batched (16), {imgSingle:F1} images/s one per call; " +
            $"MiniLM: {txtBatched:F0} sentences/s batched (32, length-bucketed), {txtSingle:F0} sentences/s one per call");
    }
}
