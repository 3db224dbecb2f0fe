namespace MLNet.Align.Tests;

public class SmokeTests
{
    [Fact]
    public void TorchSharpLoadsInTestOutput()
    {
        // Fails with TypeInitializationException when the GLIBCXX weak-need patch did not run on the copied .so.
        using var t = TorchSharp.torch.ones(3, 2);
        Assert.Equal(6f, t.sum().item<float>());
    }
}
