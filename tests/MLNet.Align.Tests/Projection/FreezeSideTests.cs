using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Projection;

/// <summary>"Flexible" alignment: a side initialised from an existing model and frozen while the other side trains.</summary>
[Collection("torch-projection")]
public class FreezeSideTests(ITestOutputHelper output)
{
    private static InMemoryAlignmentData Data => new(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);

    private static AlignmentOptions Options(int epochs, int seed, ProjectorSide freeze = ProjectorSide.None) => new()
    {
        Projector = ProjectorOptions.PooledMlp(64),
        Training = new AlignmentTrainingOptions { Epochs = epochs, BatchSize = 28, WarmupSteps = 0, ValidationFraction = 0, TorchThreads = 1, Seed = seed, Freeze = freeze },
    };

    private static Dictionary<string, float[]> Params(AlignedModel m)
        => m.Network.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());

    [Fact]
    public void FrozenImageSideKeepsTheInitModelsWeightsWhileTheTextSideTrains()
    {
        using var first = new AlignmentTrainer(Options(3, 1)).Fit(Data).Model;
        var before = Params(first);
        using var fresh = new AlignedModel(ProjectorOptions.PooledMlp(64), 512, 384, seed: 2);
        var init = Params(fresh);
        var lines = new List<string>();
        using var swapped = new AlignmentTrainer(Options(3, 2, ProjectorSide.Image)) { InitFrom = first, Log = lines.Add }.Fit(Data).Model;
        var after = Params(swapped);
        foreach (var (name, value) in after)
        {
            if (name.StartsWith("image_", StringComparison.Ordinal)) Assert.Equal(before[name], value); // bit-identical: never updated
            else if (name != "temperature") Assert.NotEqual(init[name], value);                      // trained
        }
        Assert.Equal(first.ProjectImages(FixtureFeatures.Images.Pooled).Data, swapped.ProjectImages(FixtureFeatures.Images.Pooled).Data);
        Assert.All(after.Keys, k => Assert.True(swapped.Network.named_parameters().First(p => p.name == k).parameter.requires_grad));
        Assert.Contains(lines, l => l.Contains("Image side frozen"));
        output.WriteLine(string.Join("\n", lines));
        Assert.Equal(ProjectorSide.Image, AlignmentOptions.FromJson(new AlignmentOptions { Training = swapped.Training!.Options }.ToJson()).Training.Freeze);
    }

    [Fact]
    public void FreezingAnIncompatibleSideIsRejected()
    {
        using var other = new AlignedModel(ProjectorOptions.PooledMlp(64) with { ImageGlobal = ProjectorKind.Linear }, 512, 384, seed: 1);
        var ex = Assert.Throws<ArgumentException>(() => new AlignmentTrainer(Options(1, 1, ProjectorSide.Image)) { InitFrom = other }.Fit(Data));
        Assert.Contains("Cannot freeze the image side", ex.Message);
        using var wide = new AlignedModel(ProjectorOptions.PooledMlp(128), 512, 384, seed: 1);
        Assert.Contains("embedding width 128", Assert.Throws<ArgumentException>(() => new AlignmentTrainer(Options(1, 1, ProjectorSide.Text)) { InitFrom = wide }.Fit(Data)).Message);
        using var model = new AlignedModel(ProjectorOptions.PooledMlp(64), 512, 384, seed: 1)
        {
            ImageEncoder = new MLNet.Align.EncoderIdentity("other", new string('a', 64), 512, null),
        };
        var mismatch = Assert.Throws<ArgumentException>(() => new AlignmentTrainer(Options(1, 1, ProjectorSide.Image))
        {
            InitFrom = model, ImageEncoder = new MLNet.Align.EncoderIdentity("resnet18", new string('b', 64), 512, null),
        }.Fit(Data));
        Assert.Contains("trained on image encoder 'other'", mismatch.Message);
    }
}
