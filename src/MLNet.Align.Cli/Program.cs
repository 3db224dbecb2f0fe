Console.WriteLine(typeof(MLNet.Align.BuildProbe).Assembly.GetName().Name);
using var t = TorchSharp.torch.ones(2, 2);
Console.WriteLine(t.sum().item<float>());
