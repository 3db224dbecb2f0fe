using MLNet.Align.Evaluation;
using MLNet.Align.Charts;

namespace MLNet.Align.Tests;

public class PlotsTests
{
    [Fact]
    public void RendererWritesPngsOutOfProcess()
    {
        Assert.True(Plots.Available, "plots/mlnet-align-plots.dll should be copied beside the test output");
        var dir = Directory.CreateTempSubdirectory("plots-").FullName;
        try
        {
            var lines = Path.Combine(dir, "a", "lines.png");
            Plots.Lines(lines, new Dictionary<string, (double[], double[])> { ["loss"] = (new double[] { 0, 1, 2 }, new double[] { 3, 2, 1.5 }) }, "loss", "step", "loss");
            var heat = Path.Combine(dir, "heat.png");
            Plots.Heatmap(heat, new double[,] { { 1, 0.5 }, { double.NaN, 1 } }, new[] { "a", "b" }, new[] { "x", "y" }, "cka");
            foreach (var f in new[] { lines, heat })
            {
                var bytes = File.ReadAllBytes(f);
                Assert.True(bytes.Length > 1000);
                Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
            }
            Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
            var ex = Assert.Throws<ArgumentException>(() => Plots.GroupedBars(Path.Combine(dir, "b.png"), new[] { "m" }, new[] { "g1", "g2" }, new[] { new double[] { 1 } }, "t"));
            Assert.Contains("[1 methods][2 groups]", ex.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
