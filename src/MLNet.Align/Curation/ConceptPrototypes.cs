using System.Numerics.Tensors;
using System.Security.Cryptography;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;

namespace MLNet.Align.Curation;

/// <summary>
/// One prototype vector per concept (paper section 2.1), L2-normalised: text prototypes (the mean of the
/// normalised embeddings of the concept's prompts, the v1 variant with class-name prompts) in the text encoder's space,
/// and/or image prototypes (the mean of the normalised embeddings of a few example images, the final variant's
/// "imgprotos") in the image encoder's space. Pool captions are scored against text prototypes, pool images
/// against image prototypes.
/// </summary>
public sealed class ConceptPrototypes
{
    private ConceptPrototypes(IReadOnlyList<Concept> concepts, EmbeddingMatrix? text, EncoderIdentity? textEncoder, EmbeddingMatrix? image, EncoderIdentity? imageEncoder)
    {
        Concepts = concepts; Text = text; TextEncoder = textEncoder; Image = image; ImageEncoder = imageEncoder;
    }

    /// <summary>The concepts, in list order (row c of each matrix).</summary>
    public IReadOnlyList<Concept> Concepts { get; }
    /// <summary>Text prototypes [C, Dt], unit rows; null when not built.</summary>
    public EmbeddingMatrix? Text { get; }
    /// <summary>Encoder of <see cref="Text"/>.</summary>
    public EncoderIdentity? TextEncoder { get; }
    /// <summary>Image prototypes [C, Di], unit rows; null when not built.</summary>
    public EmbeddingMatrix? Image { get; }
    /// <summary>Encoder of <see cref="Image"/>.</summary>
    public EncoderIdentity? ImageEncoder { get; }

    /// <summary>Text prototypes from prompts: for concept c, every template filled with its name (plus, with
    /// <paramref name="useGlosses"/> and a gloss, the prompt "name: gloss"), encoded, normalised, averaged, renormalised.</summary>
    /// <exception cref="ArgumentException">No concepts or no templates.</exception>
    public static ConceptPrototypes FromText(IReadOnlyList<Concept> concepts, PromptTemplates templates, ITextEncoder encoder, bool useGlosses = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(concepts);
        ArgumentNullException.ThrowIfNull(templates);
        ArgumentNullException.ThrowIfNull(encoder);
        if (concepts.Count == 0) throw new ArgumentException("No concepts.", nameof(concepts));
        if (templates.Count == 0) throw new ArgumentException("No prompt templates.", nameof(templates));
        var prompts = new List<string>();
        var owner = new List<int>();
        for (int c = 0; c < concepts.Count; c++)
        {
            foreach (var p in templates.Apply(concepts[c].Name)) { prompts.Add(p); owner.Add(c); }
            if (useGlosses && concepts[c].Gloss is string g) { prompts.Add($"{concepts[c].Name}: {g}"); owner.Add(c); }
        }
        var enc = encoder.EncodeBatch(prompts, false, cancellationToken).Pooled;
        return new ConceptPrototypes(concepts, MeanPerConcept(enc, owner, concepts.Count), encoder.Identity, null, null);
    }

    /// <summary>Image prototypes from example images: <paramref name="examplesRoot"/>/&lt;concept name or id&gt;/*
    /// (PNG, JPEG, WebP...), the first <paramref name="perConcept"/> files in ordinal name order, encoded, normalised,
    /// averaged, renormalised.</summary>
    /// <exception cref="DirectoryNotFoundException">The root does not exist.</exception>
    /// <exception cref="InvalidDataException">Concepts without an example folder or images (the message lists them).</exception>
    public static ConceptPrototypes FromImages(IReadOnlyList<Concept> concepts, string examplesRoot, IImageEncoder encoder, int perConcept = 16,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(concepts);
        ArgumentNullException.ThrowIfNull(encoder);
        if (perConcept < 1) throw new ArgumentOutOfRangeException(nameof(perConcept), perConcept, "Need at least one example per concept.");
        string root = Path.GetFullPath(examplesRoot);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"Example image folder not found: {root}");
        string[] exts = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"];
        var paths = new List<string>();
        var owner = new List<int>();
        var missing = new List<string>();
        for (int c = 0; c < concepts.Count; c++)
        {
            var dir = new[] { concepts[c].Name, concepts[c].Id }.Where(n => n is not null).Select(n => Path.Combine(root, n!)).FirstOrDefault(Directory.Exists);
            var files = dir is null ? [] : Directory.GetFiles(dir).Where(f => exts.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Order(StringComparer.Ordinal).Take(perConcept).ToArray();
            if (files.Length == 0) { missing.Add(concepts[c].Name); continue; }
            foreach (var f in files) { paths.Add(f); owner.Add(c); }
        }
        if (missing.Count > 0)
            throw new InvalidDataException($"{root}: no example images for {missing.Count} of {concepts.Count} concepts (expected {root}/<concept name>/*.png), e.g. {string.Join(", ", missing.Take(5).Select(m => $"'{m}'"))}.");
        var enc = encoder.EncodeBatch(paths, false, cancellationToken).Pooled;
        return new ConceptPrototypes(concepts, null, null, MeanPerConcept(enc, owner, concepts.Count), encoder.Identity);
    }

    /// <summary>These prototypes plus the image prototypes of <paramref name="images"/> (same concepts), for scoring both sides.</summary>
    /// <exception cref="ArgumentException">The concept lists differ.</exception>
    public ConceptPrototypes WithImages(ConceptPrototypes images)
    {
        if (!images.Concepts.Select(c => c.Name).SequenceEqual(Concepts.Select(c => c.Name)))
            throw new ArgumentException("The image prototypes are for another concept list.");
        return new ConceptPrototypes(Concepts, Text, TextEncoder, images.Image, images.ImageEncoder);
    }

    /// <summary>SHA-256 over the prototype matrices and their encoders (identifies a scoring across shards).</summary>
    public string Fingerprint
    {
        get
        {
            using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            h.AppendData(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", Concepts.Select(c => c.Name)) + $"|{TextEncoder?.Sha256}|{ImageEncoder?.Sha256}"));
            if (Text is not null) h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Text.Data.AsSpan()));
            if (Image is not null) h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Image.Data.AsSpan()));
            return Convert.ToHexStringLower(h.GetHashAndReset());
        }
    }

    private static EmbeddingMatrix MeanPerConcept(EmbeddingMatrix enc, List<int> owner, int count)
    {
        int d = enc.Columns;
        var (sum, _) = DenseMath.GroupSums(enc, owner, count, unitRows: true, nameof(owner));
        for (int c = 0; c < count; c++)
        {
            var row = sum.AsSpan(c * d, d);
            float norm = TensorPrimitives.Norm(row);
            if (norm > 0) TensorPrimitives.Divide(row, norm, row);
        }
        return new EmbeddingMatrix(sum, count, d);
    }
}
