using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using static TorchSharp.torch;

namespace MLNet.Align.Tests.Projection;

/// <summary>
/// Issue 19, training side: a diverging run fails with the epoch, step and likely cause instead of returning a NaN model;
/// NaN similarities are an error, never a hit; option values are range-checked; --config keys are checked; checkpoints
/// are checksummed and tied to the encoders and the data they were trained on; a disposed model throws.
/// </summary>
[Collection("torch-projection")]
public class TrainingReliabilityTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"train-reliability-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The first 24 fixture pairs (real ResNet-18 / MiniLM features), optionally with one value replaced.</summary>
    private static InMemoryAlignmentData Data(int poisonRow = -1, float poison = float.NaN)
    {
        const int n = 24;
        var images = FixtureFeatures.Images.Pooled;
        var texts = FixtureFeatures.Texts.Pooled;
        var img = images.Data.AsSpan(0, n * 512).ToArray();
        var txt = texts.Data.AsSpan(0, n * 384).ToArray();
        if (poisonRow >= 0) img[poisonRow * 512 + 7] = poison;
        return new InMemoryAlignmentData(new EmbeddingMatrix(img, n, 512), new EmbeddingMatrix(txt, n, 384));
    }

    private static AlignmentOptions Small(AlignmentTrainingOptions? training = null) => new()
    {
        Projector = new ProjectorOptions { EmbeddingDimension = 32 },
        Training = training ?? new AlignmentTrainingOptions { Epochs = 2, BatchSize = 4, WarmupSteps = 0, TorchThreads = 1, ValidationFraction = 0.25 },
    };

    [Fact]
    public void A_diverging_run_stops_with_epoch_step_and_cause_and_returns_no_model()
    {
        // lr 1000 with weight decay 0.02 multiplies the weights by about -19 per step until they overflow float32.
        var options = Small(new AlignmentTrainingOptions { Epochs = 20, BatchSize = 4, TorchThreads = 1, LearningRate = 1000, ValidationFraction = 0.25, CheckpointDirectory = _dir });
        var e = Assert.Throws<TrainingDivergedException>(() => new AlignmentTrainer(options).Fit(Data()));
        Assert.InRange(e.Epoch, 1, 20);
        Assert.InRange(e.Step, 1, 20 * 4);
        Assert.Contains($"Training diverged in epoch {e.Epoch} of 20, step {e.Step} of 80", e.Message);
        Assert.Contains("LearningRate 1000", e.Message);
        Assert.DoesNotContain("\n", e.Message);
        // The checkpoint left on disk is the last finite one: it reads back, and the resumed run diverges again at
        // the same step rather than resuming from NaN weights.
        var again = Assert.Throws<TrainingDivergedException>(() => new AlignmentTrainer(options).Resume(Data()));
        Assert.Equal(e.Step, again.Step);
    }

    [Fact]
    public void A_nan_training_feature_stops_training_naming_the_cause()
    {
        // Validation holds the seeded 25% split; the NaN goes into a row that is trained on.
        var options = Small();
        long[] validation = [0, 1, 2, 3, 4, 5];
        var e = Assert.Throws<TrainingDivergedException>(() => new AlignmentTrainer(options).Fit(Data(poisonRow: 10), validation));
        Assert.Contains("the loss is NaN", e.Message);
        Assert.Contains("NaN/infinite training features", e.Message);
        Assert.Equal(1, e.Epoch);
    }

    [Fact]
    public void Nan_validation_embeddings_are_an_error_never_a_hit()
    {
        long[] validation = [0, 1, 2, 3, 4, 5];
        var e = Assert.Throws<TrainingDivergedException>(() => new AlignmentTrainer(Small()).Fit(Data(poisonRow: 2), validation));
        Assert.Contains("the validation embeddings hold NaN or infinity", e.Message);

        // The metric itself: NaN compares false with everything, which used to rank every positive first (R@1 = 100%).
        using var images = tensor(new float[] { float.NaN, 0, 0, 1, 1, 0 }, 3, 2);
        using var texts = tensor(new float[] { 1, 0, 0, 1, 1, 0 }, 3, 2);
        var m = Assert.Throws<ArgumentException>(() => ValidationMetrics.Compute(images, texts, 0.07));
        Assert.Contains("3 of the 3 x 3 validation similarities are NaN or infinite", m.Message);
    }

    [Fact]
    public void A_model_with_non_finite_weights_is_never_saved()
    {
        using var model = new AlignedModel(ProjectorOptions.PooledMlp(16), 512, 384);
        using (no_grad()) model.Network.named_parameters().First(p => p.name.StartsWith("image_global.")).parameter.fill_(float.PositiveInfinity);
        var target = Path.Combine(_dir, "model");
        var e = Assert.Throws<InvalidDataException>(() => model.Save(target));
        Assert.Contains("holds NaN or infinite weights ('image_global.", e.Message);
        Assert.False(Directory.Exists(target));
        Assert.False(Directory.Exists(_dir) && Directory.EnumerateFileSystemEntries(_dir).Any(), "a temp folder was left behind");
    }

    [Fact]
    public void A_disposed_model_throws_ObjectDisposedException_from_its_public_methods()
    {
        var model = new AlignedModel(ProjectorOptions.PooledMlp(16), 512, 384);
        var pooled = new EmbeddingMatrix(new float[2 * 512], 2, 512);
        model.Dispose();
        model.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => model.ProjectImages(pooled));
        Assert.Throws<ObjectDisposedException>(() => model.ProjectTexts(new EmbeddingMatrix(new float[2 * 384], 2, 384)));
        Assert.Throws<ObjectDisposedException>(() => model.GetWeights());
        Assert.Throws<ObjectDisposedException>(() => model.SetWeights([1, 2, 3]));
        Assert.Throws<ObjectDisposedException>(() => model.ExportImageProjectorOnnx());
        Assert.Throws<ObjectDisposedException>(() => model.ExportTextProjectorOnnx());
        Assert.Throws<ObjectDisposedException>(() => model.Save(Path.Combine(_dir, "m")));
        Assert.Throws<ObjectDisposedException>(() => model.Temperature);
        Assert.Throws<ObjectDisposedException>(() => model.Network);
        Assert.Equal(16, model.EmbeddingDimension); // metadata stays readable
    }

    public static IEnumerable<object[]> BadOptions()
    {
        var t = new AlignmentTrainingOptions();
        yield return [t with { LearningRate = double.NaN }, "LearningRate must be positive and finite, got NaN"];
        yield return [t with { LearningRate = double.PositiveInfinity }, "LearningRate must be positive and finite, got "];
        yield return [t with { MinLearningRate = double.NaN }, "MinLearningRate must be >= 0 and finite, got NaN"];
        yield return [t with { MinLearningRate = -0.5 }, "MinLearningRate must be >= 0 and finite, got -0.5"];
        yield return [t with { WarmupStartLearningRate = -0.001 }, "WarmupStartLearningRate must be >= 0 and finite, got -0.001"];
        yield return [t with { WeightDecay = double.NaN }, "WeightDecay must be finite and >= 0, got NaN"];
        yield return [t with { WeightDecay = double.PositiveInfinity }, "WeightDecay must be finite and >= 0, got "];
        yield return [t with { MaxGradientNorm = double.NaN }, "MaxGradientNorm must be positive and finite, or null for no clipping, got NaN"];
        yield return [t with { MaxGradientNorm = 0 }, "MaxGradientNorm must be positive and finite, or null for no clipping, got 0"];
        yield return [t with { TorchThreads = 0 }, "TorchThreads must be in [1, 1024] or null (leave torch's setting alone), got 0"];
        yield return [t with { TorchThreads = -3 }, "TorchThreads must be in [1, 1024] or null (leave torch's setting alone), got -3"];
        yield return [t with { BatchSize = int.MaxValue }, "BatchSize must be in [2, 32768] (a step holds several n x n float32 matrices, 4 GiB each at 32768), got 2147483647"];
        yield return [t with { MaxValidationRows = 1_000_000 }, "MaxValidationRows must be in [0, 32768]"];
        yield return [t with { StructureWeight = double.PositiveInfinity }, "StructureWeight and AnchorWeight must be finite and >= 0, got "];
    }

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Out_of_range_training_options_are_refused_naming_option_value_and_range(AlignmentTrainingOptions training, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => new AlignmentTrainer(new AlignmentOptions { Training = training }));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void An_embedding_width_beyond_memory_is_refused_before_any_weight_exists()
    {
        var options = new AlignmentOptions { Projector = new ProjectorOptions { EmbeddingDimension = 200_000_000 } };
        var e = Assert.Throws<ArgumentException>(() => new AlignmentTrainer(options));
        Assert.Contains("EmbeddingDimension must be in [1, 16384]", e.Message);
        Assert.Contains("got 200000000", e.Message);
    }

    [Fact]
    public void Options_json_with_an_unknown_key_is_refused_naming_it_and_the_known_keys()
    {
        var nested = Assert.Throws<System.Text.Json.JsonException>(() => AlignmentOptions.FromJson("{ \"Training\": { \"Epochs\": 1, \"learningrat\": 0.01 } }"));
        Assert.Contains("unknown key 'Training.learningrat' (did you mean 'LearningRate'?)", nested.Message);
        Assert.Contains("the known keys of Training are Epochs, BatchSize, LearningRate,", nested.Message);
        var top = Assert.Throws<System.Text.Json.JsonException>(() => AlignmentOptions.FromJson("{ \"Trainig\": { } }"));
        Assert.Contains("unknown key 'Trainig' (did you mean 'Training'?); the known keys of the top level are Projector, Training.", top.Message);
        var ignored = Assert.Throws<System.Text.Json.JsonException>(() => AlignmentOptions.FromJson("{ \"Projector\": { \"UsesImageTokens\": true } }"));
        Assert.Contains("unknown key 'Projector.UsesImageTokens'", ignored.Message);
        // Keys match case-insensitively, as the reader does; everything ToJson writes reads back.
        Assert.Equal(7, AlignmentOptions.FromJson("{ \"training\": { \"epochs\": 7 } }").Training.Epochs);
        var full = new AlignmentOptions { Training = new AlignmentTrainingOptions { Epochs = 3, MaxGradientNorm = 1, TorchThreads = 2 } };
        Assert.Equal(full.Training, AlignmentOptions.FromJson(full.ToJson()).Training);
    }

    [Fact]
    public void A_checkpoint_with_8_flipped_bytes_is_refused_naming_the_file()
    {
        var options = Small(new AlignmentTrainingOptions { Epochs = 2, BatchSize = 4, TorchThreads = 1, ValidationFraction = 0.25, CheckpointDirectory = _dir });
        new AlignmentTrainer(options).Fit(Data()).Model.Dispose();
        var path = Path.Combine(_dir, AlignmentTrainer.CheckpointFile);
        var bytes = File.ReadAllBytes(path);
        for (int i = 0; i < 8; i++) bytes[bytes.Length / 2 + i] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => new AlignmentTrainer(options).Resume(Data()));
        Assert.Contains($"Checkpoint '{path}' is corrupt: the SHA-256 of its contents is", e.Message);
    }

    [Fact]
    public void Resume_refuses_another_encoder_or_other_data_naming_both_sides()
    {
        var options = Small(new AlignmentTrainingOptions { Epochs = 2, BatchSize = 4, TorchThreads = 1, ValidationFraction = 0.25, CheckpointDirectory = _dir });
        var image = new EncoderIdentity("resnet18", new string('a', 64), 512, null);
        var textA = new EncoderIdentity("minilm", new string('b', 64), 384, null);
        var textB = new EncoderIdentity("other-text", new string('c', 64), 384, null);
        new AlignmentTrainer(options) { ImageEncoder = image, TextEncoder = textA }.Fit(new DigestedData(Data(), "d1")).Model.Dispose();

        var encoder = Assert.Throws<InvalidDataException>(() => new AlignmentTrainer(options) { ImageEncoder = image, TextEncoder = textB }.Resume(new DigestedData(Data(), "d1")));
        Assert.Contains("was trained with text encoder 'minilm' (sha bbbbbbbbbbbb), but this run's data was made with 'other-text' (sha cccccccccccc)", encoder.Message);
        var none = Assert.Throws<InvalidDataException>(() => new AlignmentTrainer(options) { ImageEncoder = image }.Resume(new DigestedData(Data(), "d1")));
        Assert.Contains("text encoder 'minilm' (sha bbbbbbbbbbbb), but this run's data was made with no recorded encoder", none.Message);
        var data = Assert.Throws<InvalidDataException>(() => new AlignmentTrainer(options) { ImageEncoder = image, TextEncoder = textA }.Resume(new DigestedData(Data(), "d2")));
        Assert.Contains("was trained on data with digest d1, this run's data has digest d2", data.Message);
        // The same encoders and data resume.
        new AlignmentTrainer(options) { ImageEncoder = image, TextEncoder = textA }.Resume(new DigestedData(Data(), "d1")).Model.Dispose();
    }

    /// <summary>A source with a content digest (as the embedding store has).</summary>
    private sealed class DigestedData(InMemoryAlignmentData inner, string digest) : IAlignmentDataSource
    {
        public long Count => inner.Count;
        public int ImageDimension => inner.ImageDimension;
        public int TextDimension => inner.TextDimension;
        public int? ImageTokenDimension => inner.ImageTokenDimension;
        public int? TextTokenDimension => inner.TextTokenDimension;
        public string? ContentDigest => digest;
        public IEnumerable<AlignmentBatch> GetBatches(int batchSize, IReadOnlyList<long>? rows = null, int? shuffleSeed = null, bool withTokens = false, CancellationToken cancellationToken = default)
            => inner.GetBatches(batchSize, rows, shuffleSeed, withTokens, cancellationToken);
    }
}
