using Microsoft.Extensions.AI;
using MLNet.Align.Projection;
using MLNet.Align.Search;

namespace MLNet.Align.Tests.Search;

/// <summary>The aligned model as Microsoft.Extensions.AI embedding generators: the same vectors as the index's queries.</summary>
[Collection("search")]
public class EmbeddingGeneratorTests(SearchFixture fx) : IClassFixture<SearchFixture>
{
    [Fact]
    public async Task Text_and_image_generators_give_the_aligned_embeddings()
    {
        using var model = AlignedModel.Load(fx.Model);
        using IEmbeddingGenerator<string, Embedding<float>> text = new AlignedTextEmbeddingGenerator(model);
        using IEmbeddingGenerator<DataContent, Embedding<float>> image = new AlignedImageEmbeddingGenerator(model);
        var texts = await text.GenerateAsync(["A blackbird.", "a red dress"]);
        Assert.Equal(2, texts.Count);
        Assert.Equal(model.EmbeddingDimension, texts[0].Vector.Length);
        var direct = SearchFixture.DirectText(fx.Model, "a red dress");
        for (int i = 0; i < direct.Length; i++) Assert.Equal(direct[i], texts[1].Vector.Span[i], 5);

        string file = FixtureFeatures.ImagePaths[3];
        var images = await image.GenerateAsync([new DataContent(File.ReadAllBytes(file), "image/png")]);
        var expected = model.ProjectImages(FixtureFeatures.ResNet18.EncodeBatch([file]).Pooled).Row(0).ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], images[0].Vector.Span[i], 5);

        var meta = (EmbeddingGeneratorMetadata)text.GetService(typeof(EmbeddingGeneratorMetadata))!;
        Assert.Equal(model.EmbeddingDimension, meta.DefaultModelDimensions);
        await Assert.ThrowsAsync<ArgumentException>(() => image.GenerateAsync([new DataContent(new byte[] { 1 }, "text/plain")]));
        await Assert.ThrowsAsync<ArgumentException>(() => text.GenerateAsync(["ok"], new EmbeddingGenerationOptions { Dimensions = 7 }));
        await Assert.ThrowsAsync<ArgumentException>(() => text.GenerateAsync([" "]));
    }
}
