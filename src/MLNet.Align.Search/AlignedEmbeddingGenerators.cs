using Microsoft.Extensions.AI;
using MLNet.Align.Projection;

namespace MLNet.Align.Search;

/// <summary>
/// The aligned model's text side as a Microsoft.Extensions.AI <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>:
/// frozen text encoder then text projector, one <see cref="Embedding{T}"/> of <see cref="AlignedModel.EmbeddingDimension"/>
/// floats (unit length) per text, in the same space as <see cref="AlignedImageEmbeddingGenerator"/>'s images, so an app
/// can fill any Microsoft.Extensions.VectorData store with images and query it with text.
/// </summary>
public sealed class AlignedTextEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly AlignedEmbedder _embedder;

    /// <summary>Wraps <paramref name="model"/> (not disposed by the generator).</summary>
    /// <exception cref="NotSupportedException">The model's image side needs image tokens.</exception>
    public AlignedTextEmbeddingGenerator(AlignedModel model) => _embedder = new AlignedEmbedder(model, ownsModel: false);

    /// <summary>Embeds texts. The options' dimensions, when given, must equal the model's.</summary>
    /// <exception cref="ArgumentException">A text is empty, or other dimensions are asked for.</exception>
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        EmbeddingGenerators.CheckDimensions(options, _embedder.Model);
        var list = values.ToList();
        cancellationToken.ThrowIfCancellationRequested();
        var vectors = list.Count == 0 ? [] : _embedder.Texts(list);
        return Task.FromResult(EmbeddingGenerators.Wrap(vectors, _embedder.Model));
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null) => EmbeddingGenerators.GetService(this, serviceType, serviceKey, _embedder.Model);

    /// <inheritdoc/>
    public void Dispose() => _embedder.Dispose();
}

/// <summary>
/// The aligned model's image side as an <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over
/// <see cref="DataContent"/> (image bytes with an image/* media type, or a file: URI): frozen image encoder then image
/// projector, unit-length embeddings in the text generator's space.
/// </summary>
public sealed class AlignedImageEmbeddingGenerator : IEmbeddingGenerator<DataContent, Embedding<float>>
{
    private readonly AlignedEmbedder _embedder;

    /// <summary>Wraps <paramref name="model"/> (not disposed by the generator).</summary>
    /// <exception cref="NotSupportedException">The model's image side needs image tokens.</exception>
    public AlignedImageEmbeddingGenerator(AlignedModel model) => _embedder = new AlignedEmbedder(model, ownsModel: false);

    /// <summary>Embeds images.</summary>
    /// <exception cref="ArgumentException">An input is not an image (its media type), or other dimensions are asked for.</exception>
    /// <exception cref="InvalidDataException">An image cannot be decoded.</exception>
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<DataContent> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        EmbeddingGenerators.CheckDimensions(options, _embedder.Model);
        var vectors = new List<float[]>();
        int i = 0;
        foreach (var content in values)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!content.HasTopLevelMediaType("image"))
                throw new ArgumentException($"Input {i} has media type '{content.MediaType}', not an image.", nameof(values));
            vectors.Add(_embedder.ImageBytes(content.Data.ToArray()));
            i++;
        }
        return Task.FromResult(EmbeddingGenerators.Wrap(vectors.ToArray(), _embedder.Model));
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null) => EmbeddingGenerators.GetService(this, serviceType, serviceKey, _embedder.Model);

    /// <inheritdoc/>
    public void Dispose() => _embedder.Dispose();
}

internal static class EmbeddingGenerators
{
    public static void CheckDimensions(EmbeddingGenerationOptions? options, AlignedModel model)
    {
        if (options?.Dimensions is int d && d != model.EmbeddingDimension)
            throw new ArgumentException($"The aligned model '{model.Name}' gives {model.EmbeddingDimension}-dimensional embeddings; {d} were asked for.");
    }

    public static GeneratedEmbeddings<Embedding<float>> Wrap(float[][] vectors, AlignedModel model)
    {
        var now = DateTimeOffset.UtcNow;
        return new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = model.Name, CreatedAt = now }));
    }

    public static object? GetService(object self, Type serviceType, object? serviceKey, AlignedModel model)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata))
            return new EmbeddingGeneratorMetadata("MLNet.Align", null, model.Name, model.EmbeddingDimension);
        if (serviceType == typeof(AlignedModel)) return model;
        return serviceType.IsInstanceOfType(self) ? self : null;
    }
}
