namespace MLNet.Align;
public static class BuildProbe
{
    public static string Probe()
    {
        using var t = TorchSharp.torch.ones(2, 2);
        var o = new Microsoft.ML.OnnxRuntime.SessionOptions();
        return t.sum().item<float>().ToString() + o.GetType().Name;
    }
}
