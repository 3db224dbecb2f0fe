using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Evaluation.Baselines;
using MLNet.Align.Projection;
using MLNet.Align.Recipes;
using MLNet.Align.Prompts;
using static MLNet.Align.Tests.Shared.Vectors;

namespace MLNet.Align.Tests.Recipes;

/// <summary>Every method is a recipe whose result is an <see cref="AlignedModel"/>: the closed-form maps and ASIF as
/// bundles equal to the original baselines, exported to ONNX equal to TorchSharp; the validation measure that cannot
/// be fooled; and "auto" choosing the best on held-out groups.</summary>
[Collection("torch-projection")]
public class RecipeTests
{
    private static EmbeddingMatrix Images => FixtureFeatures.Images.Pooled;
    private static EmbeddingMatrix Texts => FixtureFeatures.Texts.Pooled;

    public static TheoryData<string> Maps => new() { "least-squares", "reverse-ridge", "procrustes" };

    [Theory]
    [MemberData(nameof(Maps))]
    public void ClosedFormMapAsAlignedModelEqualsTheMapInTorchOnnxAndBundle(string name)
    {
        var recipe = (ClosedFormRecipe)RecipeCatalog.Get(name);
        var map = recipe.FitMap(Images, Texts);
        using var model = AlignedModel.FromLinearMap(map);
        Assert.Equal(100f, model.LogitScale, 3);
        Assert.True(MaxAbsDiff(map.ProjectImages(Images).Data, model.ProjectImages(Images).Data) <= 1e-5f, "image side");
        Assert.True(MaxAbsDiff(map.ProjectTexts(Texts).Data, model.ProjectTexts(Texts).Data) <= 1e-5f, "text side");
        CheckOnnxAndBundle(model);
    }

    [Fact]
    public void AsifAsAlignedModelEqualsTheBaselineInTorchOnnxAndBundle()
    {
        var reference = AsifProjector.Fit(Images, Texts, new AsifProjector.Options { K = 10, P = 8 });
        using var model = AlignedModel.FromAnchors(Images, Texts, topK: 10, power: 8);
        Assert.Equal(56, model.EmbeddingDimension);
        var expected = reference.ProjectImages(Images).Data;
        var actual = model.ProjectImages(Images).Data;
        Assert.True(MaxAbsDiff(expected, actual) <= 1e-5f, $"image side differs by {MaxAbsDiff(expected, actual)}");
        Assert.True(MaxAbsDiff(reference.ProjectTexts(Texts).Data, model.ProjectTexts(Texts).Data) <= 1e-5f, "text side");
        // Exactly 10 non-zeros per row (no ties on real features).
        for (int r = 0; r < 56; r++) Assert.Equal(10, model.ProjectTexts(Texts).Row(r).ToArray().Count(v => v != 0));
        CheckOnnxAndBundle(model);
    }

    private static void CheckOnnxAndBundle(AlignedModel model)
    {
        int n = Images.Rows;
        using (var s = new InferenceSession(model.ExportImageProjectorOnnx()))
        using (var r = s.Run([NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.ImageEmbedding, new DenseTensor<float>(Images.Data, [n, Images.Columns]))]))
            Assert.True(MaxAbsDiff(model.ProjectImages(Images).Data, r.Single().AsEnumerable<float>().ToArray()) <= 1e-5f, "image ONNX");
        using (var s = new InferenceSession(model.ExportTextProjectorOnnx()))
        using (var r = s.Run([NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.TextEmbedding, new DenseTensor<float>(Texts.Data, [n, Texts.Columns]))]))
            Assert.True(MaxAbsDiff(model.ProjectTexts(Texts).Data, r.Single().AsEnumerable<float>().ToArray()) <= 1e-5f, "text ONNX");
        var dir = Path.Combine(Path.GetTempPath(), $"recipe-bundle-{Guid.NewGuid():N}");
        try
        {
            model.Save(dir);
            using var loaded = AlignedModel.Load(dir);
            Assert.Equal(model.Name, loaded.Name);
            Assert.Equal(model.Projector, loaded.Projector);
            Assert.Equal(model.ProjectImages(Images).Data, loaded.ProjectImages(Images).Data);
            Assert.Equal(model.ProjectTexts(Texts).Data, loaded.ProjectTexts(Texts).Data);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void ClosedFormAndAsifModelsServeAsMLNetZeroShotZips()
    {
        var classes = new[] { "frog", "cat", "bird", "car", "flower", "apple" };
        var paths = FixtureFeatures.ImagePaths.Take(12).ToArray();
        foreach (var model in new[] { AlignedModel.FromLinearMap(ProcrustesMap.Fit(Images, Texts)), AlignedModel.FromAnchors(Images, Texts, topK: 10) })
        {
            using var owned = model;
            var ml = new Microsoft.ML.MLContext(1);
            var embeddings = MLNet.Align.ZeroShot.ClassEmbeddingBuilder.Build(classes, MLNet.Align.Prompts.PromptTemplates.Photo, FixtureFeatures.MiniLM, model);
            var dir = Directory.CreateTempSubdirectory("recipe-zip").FullName;
            try
            {
                var zip = Path.Combine(dir, "classifier.zip");
                MLNet.Align.ZeroShot.ZeroShotClassifierIO.BuildAndSave(ml, model, embeddings, zip);
                var loaded = ml.Model.Load(zip, out _);
                using var engine = ml.Model.CreatePredictionEngine<MLNet.Align.ZeroShot.ZeroShotImageInput, MLNet.Align.ZeroShot.ZeroShotPrediction>(loaded);
                // Direct: the model on the encoder's features, nearest class vector.
                var z = model.ProjectImages(Images.SelectRows(Enumerable.Range(0, paths.Length).ToArray()));
                int agree = 0;
                for (int i = 0; i < paths.Length; i++)
                {
                    var p = engine.Predict(new MLNet.Align.ZeroShot.ZeroShotImageInput { ImagePath = paths[i] });
                    Assert.Equal(classes.Length, p.Score.Length);
                    Assert.All(p.Score, v => Assert.True(float.IsFinite(v)));
                    var sims = Enumerable.Range(0, classes.Length).Select(c => Cosine(z.Row(i), embeddings.Matrix.Row(c)) * Norm(embeddings.Matrix.Row(c))).ToArray();
                    if (classes[Array.IndexOf(sims, sims.Max())] == p.PredictedClass[0]) agree++;
                }
                // ML.NET decodes and resizes the images itself (cosine ~0.999 to our encoder's features): near-ties may flip.
                Assert.True(agree >= paths.Length - 1, $"{model.Name}: the zip agreed with the model on {agree} of {paths.Length} images");
            }
            finally { Directory.Delete(dir, true); }
        }
    }

    private static float Norm(ReadOnlySpan<float> v) => (float)Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(v, v));

    [Fact]
    public void AnchorsPiecesAreValidatedAsPairsOnGlobalSlots()
    {
        var bad = new ProjectorOptions { ImageGlobal = ProjectorKind.Anchors, TextGlobal = ProjectorKind.Mlp, EmbeddingDimension = 56 };
        Assert.Contains("come in pairs", Assert.Throws<ArgumentException>(() => bad.Validate(512, 384, null, null)).Message);
        var k = bad with { TextGlobal = ProjectorKind.Anchors, AnchorTopK = 57 };
        Assert.Contains("AnchorTopK must be in [1, 56]", Assert.Throws<ArgumentException>(() => k.Validate(512, 384, null, null)).Message);
    }

    // 4 images, 4 captions; captions 0 and 1 are identical text (one group), images 0 and 1 alike; 2 and 3 on their own.
    private static ValidationSet Toy(long[]? groups) => new()
    {
        Image = new EmbeddingMatrix([1, 0, 0, 0.9f, 0.1f, 0, 0, 0, 1, 0, 1, 0], 4, 3),
        Text = new EmbeddingMatrix([1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0], 4, 3),
        Groups = groups,
    };

    private sealed class Fixed(Func<EmbeddingMatrix, EmbeddingMatrix> image, Func<EmbeddingMatrix, EmbeddingMatrix> text) : IAlignedProjector
    {
        public string Name => "fixed";
        public int EmbeddingDimension => 3;
        public bool UsesImageTokens => false;
        public bool UsesTextTokens => false;
        public float LogitScale => 100;
        public EmbeddingMatrix ProjectImages(EmbeddingMatrix pooled, TokenTensor? tokens = null) => image(pooled);
        public EmbeddingMatrix ProjectTexts(EmbeddingMatrix pooled, TokenTensor? tokens = null) => text(pooled);
    }

    private static EmbeddingMatrix Unit(EmbeddingMatrix m)
    {
        var d = (float[])m.Data.Clone();
        for (int r = 0; r < m.Rows; r++)
        {
            double s = 0; for (int c = 0; c < m.Columns; c++) s += d[r * m.Columns + c] * d[r * m.Columns + c];
            for (int c = 0; c < m.Columns; c++) d[r * m.Columns + c] /= (float)Math.Sqrt(s);
        }
        return new EmbeddingMatrix(d, m.Rows, m.Columns);
    }

    [Fact]
    public void GroupAwareRecallCountsADuplicateCaptionAsTheAnswerAndNeverCountsTiesOrNaN()
    {
        var identity = new Fixed(Unit, Unit);
        // Image 1's caption is identical to image 0's: without groups its true caption ties with caption 0 and the
        // pessimistic rank misses it; with the group both are one answer.
        var plain = ValidationMeasure.Evaluate(identity, Toy(null));
        Assert.Equal(50, plain.ImageToText[0], 6);
        var grouped = ValidationMeasure.Evaluate(identity, Toy([7, 7, 8, 9]));
        Assert.Equal(100, grouped.ImageToText[0], 6);
        Assert.Equal(100, grouped.TextToImage[0], 6);
        Assert.Equal(3, grouped.Groups);
        Assert.Equal(100, grouped.Score, 6);
        // A collapsed model (every embedding equal) scores 0, never 100.
        var collapsed = new Fixed(m => Unit(new EmbeddingMatrix(Enumerable.Repeat(1f, m.Rows * 3).ToArray(), m.Rows, 3)),
            m => Unit(new EmbeddingMatrix(Enumerable.Repeat(1f, m.Rows * 3).ToArray(), m.Rows, 3)));
        var c = ValidationMeasure.Evaluate(collapsed, Toy([7, 7, 8, 9]));
        Assert.Equal(0, c.ImageToText[0], 6);
        Assert.Equal(0, c.TextToImage[0], 6);
        // NaN is an error naming the model and side.
        var nan = new Fixed(m => new EmbeddingMatrix(Enumerable.Repeat(float.NaN, m.Rows * 3).ToArray(), m.Rows, 3), Unit);
        var e = Assert.Throws<ArithmeticException>(() => ValidationMeasure.Evaluate(nan, Toy(null)));
        Assert.Contains("non-finite image embedding", e.Message);
        Assert.Throws<ArgumentException>(() => ValidationMeasure.Evaluate(identity, Toy([1, 1, 1, 1])));
    }

    [Fact]
    public void TrainerValidationMetricsAreGroupAwareWhenTheDataKnowsItsGroups()
    {
        var toy = Toy(null);
        using var zi = TorchSharp.torch.tensor(Unit(toy.Image).Data, new long[] { 4, 3 });
        using var zt = TorchSharp.torch.tensor(Unit(toy.Text).Data, new long[] { 4, 3 });
        // Without groups: ties in the positive's favour (the old rule), so both duplicate-caption images count as hits.
        Assert.Equal(1.0, ValidationMetrics.Compute(zi, zt, 0.07).ImageToTextR1, 6);
        // Grouped: the duplicates are one answer; every image and text still finds its group first.
        var g = ValidationMetrics.Compute(zi, zt, 0.07, [7, 7, 8, 9]);
        Assert.Equal(1.0, g.ImageToTextR1, 6);
        Assert.Equal(1.0, g.TextToImageR1, 6);
        // A collapsed model: every candidate ties, and with groups ties count against it.
        using var flat = TorchSharp.torch.ones(4, 3) / (float)Math.Sqrt(3);
        Assert.Equal(0.0, ValidationMetrics.Compute(flat, flat, 0.07, [7, 7, 8, 9]).ImageToTextR1, 6);
        Assert.Equal(1.0, ValidationMetrics.Compute(flat, flat, 0.07).ImageToTextR1, 6); // what the old rule gave it
    }

    [Fact]
    public void DuplicateCaptionsAreWarnedAbout()
    {
        var s = ValidationMeasure.Evaluate(new Fixed(Unit, Unit), Toy([1, 1, 1, 2]));
        Assert.Single(s.Warnings);
        Assert.Contains("2 distinct groups", s.Warnings[0]);
    }

    [Fact]
    public void AutoFitsEveryCandidateOnHeldOutGroupsAndKeepsTheBest()
    {
        // Closed forms on 56 pairs are rank-deficient (Procrustes' null space is LAPACK's choice): one thread keeps the
        // rerun bit-identical.
        TorchSharp.torch.set_num_threads(1);
        var groups = PairGroups.FromImagesAndCaptions(FixtureFeatures.ImagePaths, FixtureFeatures.Captions);
        var data = new InMemoryAlignmentData(Images, Texts, groupIds: groups);
        var quick = RecipeCatalog.LockedText with
        {
            Training = RecipeCatalog.LockedText.Training with { Epochs = 3, BatchSize = 16, WarmupSteps = 1, TorchThreads = 1 },
        };
        var candidates = new AlignmentRecipe[] { RecipeCatalog.LeastSquares, RecipeCatalog.Procrustes, RecipeCatalog.Asif with { TopK = 10 }, quick };
        using var selection = RecipeSelector.Select(data, new RecipeSelectionOptions { Candidates = candidates, ValidationFraction = 0.25, Seed = 3 });
        Assert.Equal(4, selection.Candidates.Count);
        Assert.All(selection.Candidates, c => Assert.Null(c.Error));
        var best = selection.Candidates.MaxBy(c => c.Scores!.Score)!;
        Assert.Equal(best.Recipe, selection.Winner);
        Assert.Equal(best.Recipe, selection.Model.Name);
        Assert.StartsWith($"{best.Recipe} has the highest validation score", selection.Reason);
        Assert.Contains("held out", selection.Validation);
        // The held-out rows are whole groups, about a quarter of the rows.
        var (train, held) = RecipeSelector.HoldOut(data, new RecipeSelectionOptions { ValidationFraction = 0.25, Seed = 3 });
        Assert.Equal(56, train.Length + held.Length);
        Assert.Empty(train.Select(r => groups[r]).Intersect(held.Select(r => groups[r])));
        Assert.InRange(held.Length, 14, 20);
        Assert.Equal(held.Length, selection.Candidates[0].Scores!.Rows);
        // The trained candidate started from a map and kept the best of its epochs and that start.
        var trained = selection.Candidates.Single(c => c.Recipe == "locked-text");
        Assert.NotNull(trained.Kept);
        var again = RecipeSelector.Select(data, new RecipeSelectionOptions { Candidates = candidates, ValidationFraction = 0.25, Seed = 3 });
        using (again) Assert.Equal(selection.Candidates.Select(c => c.Scores!.Score), again.Candidates.Select(c => c.Scores!.Score));
    }

    [Fact]
    public void CatalogTrainsARecipeByNameWithTheSourcesEncodersAndTheEstimatorToo()
    {
        TorchSharp.torch.set_num_threads(1);
        var groups = PairGroups.FromImagesAndCaptions(FixtureFeatures.ImagePaths, FixtureFeatures.Captions);
        var data = new InMemoryAlignmentData(Images, Texts, groupIds: groups)
        {
            ImageEncoder = FixtureFeatures.ResNet18.Identity, TextEncoder = FixtureFeatures.MiniLM.Identity,
        };
        var ml = new MLContext(seed: 0);
        var options = new RecipeSelectionOptions { ValidationFraction = 0.25, Seed = 3 };
        // mlContext.Alignment.Train is RecipeSelector with one candidate: the same scores, the encoders read from the source.
        using var viaCatalog = ml.Alignment.Train(data, "procrustes", options);
        using var direct = RecipeSelector.Select(data, options with { Candidates = [RecipeCatalog.Procrustes] });
        Assert.Equal("procrustes", viaCatalog.Winner);
        Assert.Equal(direct.Candidates.Single().Scores!.Score, viaCatalog.Candidates.Single().Scores!.Score);
        Assert.Equal(FixtureFeatures.ResNet18.Identity, viaCatalog.Model.ImageEncoder);
        Assert.Equal(FixtureFeatures.MiniLM.Identity, viaCatalog.Model.TextEncoder);
        string dir = Path.Combine(Path.GetTempPath(), $"mlnet-align-catalog-{Guid.NewGuid():N}");
        try
        {
            viaCatalog.Model.Save(dir);
            using var loaded = AlignedModel.Load(dir);
            Assert.Equal(FixtureFeatures.MiniLM.Identity.Sha256, loaded.TextEncoder!.Sha256);
        }
        finally { Directory.Delete(dir, recursive: true); }
        Assert.Throws<ArgumentException>(() => ml.Alignment.Train(data, "procrustus"));

        // AlignEmbeddings with a recipe fits it on the two columns through the same code.
        var rows = Enumerable.Range(0, Images.Rows).Select(i => new PairRow { Image = Images.Row(i).ToArray(), Text = Texts.Row(i).ToArray() }).ToList();
        var schema = Microsoft.ML.Data.SchemaDefinition.Create(typeof(PairRow));
        schema[nameof(PairRow.Image)].ColumnType = new Microsoft.ML.Data.VectorDataViewType(Microsoft.ML.Data.NumberDataViewType.Single, Images.Columns);
        schema[nameof(PairRow.Text)].ColumnType = new Microsoft.ML.Data.VectorDataViewType(Microsoft.ML.Data.NumberDataViewType.Single, Texts.Columns);
        var view = ml.Data.LoadFromEnumerable(rows, schema);
        var estimator = ml.Alignment.AlignEmbeddings(new AlignmentEstimator.Options
        {
            ImageInputColumnName = nameof(PairRow.Image), TextInputColumnName = nameof(PairRow.Text), Recipe = "least-squares",
        });
        using var transformer = estimator.Fit(view);
        Assert.Equal("least-squares", transformer.Model.Name);
        Assert.Null(estimator.LastHistory);
    }

    private sealed class PairRow
    {
        public float[] Image { get; set; } = [];
        public float[] Text { get; set; } = [];
    }

    [Fact]
    public void UnknownRecipeNamesTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => RecipeCatalog.Get("procrustus"));
        Assert.Contains("Unknown recipe 'procrustus'", e.Message);
        Assert.Contains("auto, least-squares, reverse-ridge, procrustes, asif, locked-text, both-sides, pooled-mlp, paper", e.Message);
    }
}
