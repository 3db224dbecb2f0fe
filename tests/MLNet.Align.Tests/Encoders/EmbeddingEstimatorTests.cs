using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Align.Encoders;
using Xunit.Abstractions;
using static MLNet.Align.Tests.Shared.FixtureFeatures;
using static MLNet.Align.Tests.Shared.Vectors;

namespace MLNet.Align.Tests.Encoders;

[Collection("Encoders")]
public class EmbeddingEstimatorTests(ITestOutputHelper output)
{
    public sealed class Pair
    {
        public string ImagePath { get; set; } = "";
        public string Caption { get; set; } = "";
    }

    public sealed class Embedded
    {
        public float[] Img { get; set; } = [];
        public float[] Txt { get; set; } = [];
        public float[] Features { get; set; } = [];
    }

    private Pair[] Rows(int n) => Enumerable.Range(0, n).Select(i => new Pair { ImagePath = ImagePaths[i], Caption = Captions[i] }).ToArray();

    [Fact]
    public void Pipeline_WithStockEstimators_GivesKnownSizeColumns_EqualToDirectEncoderCalls()
    {
        var ml = new MLContext(42);
        var rows = Rows(10);
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Alignment.EmbedImages(new ImageEmbeddingEstimator.Options
            { Encoder = ResNet18, OutputColumnName = "Img", InputColumnName = nameof(Pair.ImagePath), TokensColumnName = "ImgTokens", BatchSize = 4 })
            .Append(ml.Alignment.EmbedText(new TextEmbeddingEstimator.Options
            { Encoder = MiniLM, OutputColumnName = "Txt", InputColumnName = nameof(Pair.Caption), TokensColumnName = "TxtTokens", BatchSize = 3 }))
            .Append(ml.Transforms.Concatenate("Features", "Img", "Txt"))
            .Append(ml.Transforms.NormalizeMinMax("Features"));
        var model = pipeline.Fit(data);
        var result = model.Transform(data);

        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 512), result.Schema["Img"].Type);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 384), result.Schema["Txt"].Type);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 49 * 512), result.Schema["ImgTokens"].Type);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single), result.Schema["TxtTokens"].Type);
        Assert.Equal(896, ((VectorDataViewType)result.Schema["Features"].Type).Size);

        var img = result.GetColumn<float[]>("Img").ToArray();
        var txt = result.GetColumn<float[]>("Txt").ToArray();
        var imgTokens = result.GetColumn<float[]>("ImgTokens").ToArray();
        var txtTokens = result.GetColumn<float[]>("TxtTokens").ToArray();
        var direct = ResNet18.EncodeBatch(rows.Select(r => r.ImagePath).ToArray(), withTokens: true);
        var directText = MiniLM.EncodeBatch(rows.Select(r => r.Caption).ToArray(), withTokens: true);
        Assert.Equal(10, img.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.True(MaxAbsDiff(img[i], direct.Pooled.Row(i)) <= 1e-5f, $"row {i}");
            Assert.True(MaxAbsDiff(txt[i], directText.Pooled.Row(i)) <= 1e-5f, $"row {i}");
            Assert.True(MaxAbsDiff(imgTokens[i], direct.Tokens!.Item(i)) <= 1e-5f);
            int len = directText.Tokens!.Lengths[i];
            Assert.True(MaxAbsDiff(txtTokens[i], directText.Tokens.Item(i)[..(len * 384)]) <= 1e-5f);
        }

        // Columns not asked for are not computed: reading only the caption never touches the encoders.
        Assert.Equal(rows.Select(r => r.Caption), result.GetColumn<string>(nameof(Pair.Caption)));

        // PredictionEngine (row-to-row) gives the same values.
        var engine = ml.Model.CreatePredictionEngine<Pair, Embedded>(model);
        var p = engine.Predict(rows[7]);
        Assert.True(MaxAbsDiff(p.Img, direct.Pooled.Row(7)) <= 1e-5f);
        Assert.True(MaxAbsDiff(p.Txt, directText.Pooled.Row(7)) <= 1e-5f);
        Assert.Equal(896, p.Features.Length);
        var p2 = engine.Predict(rows[2]);
        Assert.True(MaxAbsDiff(p2.Img, direct.Pooled.Row(2)) <= 1e-5f);
    }

    [Fact]
    public void Save_Throws_WithGuidance_AndBadInputsNameTheItem()
    {
        var ml = new MLContext(42);
        var data = ml.Data.LoadFromEnumerable(Rows(2));
        var model = ml.Alignment.EmbedImages("Img", nameof(Pair.ImagePath), ResNet18).Fit(data);
        var ex = Assert.Throws<NotSupportedException>(() => model.Save(null!));
        Assert.Contains("ApplyOnnxModel", ex.Message);
        var viaMl = Assert.ThrowsAny<Exception>(() => ml.Model.Save(model, data.Schema, new MemoryStream()));
        var chain = new List<Exception>();
        for (Exception? e = viaMl; e is not null; e = e.InnerException) chain.Add(e);
        Assert.Contains(chain, e => e is NotSupportedException);

        // SchemaShape propagation (SchemaShape.Create is internal to ML.NET, so the test reaches it by reflection).
        var create = typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)!;
        var shape = (SchemaShape)create.Invoke(null, [data.Schema])!;
        var outShape = ml.Alignment.EmbedImages(new ImageEmbeddingEstimator.Options { Encoder = ResNet18, OutputColumnName = "Img", InputColumnName = nameof(Pair.ImagePath), TokensColumnName = "Tok" })
            .Append(ml.Alignment.EmbedText("Txt", nameof(Pair.Caption), MiniLM)).GetOutputSchema(shape);
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, outShape.Single(c => c.Name == "Img").Kind);
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, outShape.Single(c => c.Name == "Tok").Kind);
        Assert.Equal(NumberDataViewType.Single, outShape.Single(c => c.Name == "Txt").ItemType);
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Alignment.EmbedText("Txt", "Nope", MiniLM).GetOutputSchema(shape));

        var missingCol = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Alignment.EmbedText("Txt", "Title", MiniLM).Fit(data));
        Assert.Contains("'Title'", missingCol.Message);
        Assert.Contains(nameof(Pair.Caption), missingCol.Message);

        string missing = Path.Combine(Path.GetTempPath(), "enc-missing-row.png");
        var bad = ml.Data.LoadFromEnumerable(new[] { new Pair { ImagePath = ImagePaths[0], Caption = "a" }, new Pair { ImagePath = missing, Caption = " " } });
        var nf = Assert.Throws<FileNotFoundException>(() => model.Transform(bad).GetColumn<float[]>("Img").ToArray());
        Assert.Contains(missing, nf.Message);
        var textModel = ml.Alignment.EmbedText("Txt", nameof(Pair.Caption), MiniLM).Fit(bad);
        var empty = Assert.Throws<ArgumentException>(() => textModel.Transform(bad).GetColumn<float[]>("Txt").ToArray());
        output.WriteLine(empty.Message);
        Assert.Contains("Caption", empty.Message);
        Assert.Contains("Text 1", empty.Message);
    }
}
