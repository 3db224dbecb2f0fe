using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;

namespace MLNet.Align.Similarity;

/// <summary>How an image candidate's per-image vector is formed.</summary>
public enum ImageCandidateVector
{
    /// <summary>The encoder's pooled output (CNN global average pool, ViT CLS...).</summary>
    Pooled,
    /// <summary>The mean of the encoder's tokens (the released script's DINOv2 embedding: mean of last_hidden_state).</summary>
    TokenMean,
}

/// <summary>An image candidate that is a whole encoder (as opposed to the layers of <see cref="ImageLayerCandidates"/>).</summary>
/// <param name="Name">Candidate name in reports.</param>
/// <param name="Encoder">The frozen encoder (not disposed here).</param>
/// <param name="Pooling">Pooled output or mean of tokens.</param>
public sealed record ImageEncoderCandidate(string Name, IImageEncoder Encoder, ImageCandidateVector Pooling = ImageCandidateVector.Pooled);

/// <summary>A text candidate.</summary>
/// <param name="Name">Candidate name in reports.</param>
/// <param name="Encoder">The frozen encoder (not disposed here).</param>
public sealed record TextEncoderCandidate(string Name, ITextEncoder Encoder);

/// <summary>
/// Stage-1 probe features of every candidate, one row per probe image, rows ordered by item key (the image path
/// relative to the pairs file, '/'-separated, compared ordinally): image candidates give the image's vector, text
/// candidates the mean of the image's caption embeddings (paper section 1.1). Because the row order depends only on the
/// keys and every item is encoded on its own (its captions in one call), the features of a partition
/// (<see cref="ShardPartition"/>, by the same key hash as <c>embed --shard</c>) are exactly the rows of the full
/// set, and <see cref="Merge"/> of all partitions equals a one-process <see cref="Encode"/> bit for bit.
/// </summary>
public sealed class SelectionFeatures
{
    private const uint Magic = 0x4653_4C4D; // "MLSF"
    private const int Version = 1;

    /// <summary>Creates features from parts; every matrix must have one row per key.</summary>
    /// <exception cref="ArgumentException">Row counts differ from the key count, or a name repeats.</exception>
    public SelectionFeatures(string inputIdentity, string? partition, IReadOnlyList<string> keys,
        IReadOnlyList<KeyValuePair<string, EmbeddingMatrix>> images, IReadOnlyList<KeyValuePair<string, EmbeddingMatrix>> texts)
    {
        InputIdentity = inputIdentity; Partition = partition; Keys = keys;
        foreach (var (name, m) in images.Concat(texts))
            if (m.Rows != keys.Count) throw new ArgumentException($"Candidate '{name}' has {m.Rows} rows for {keys.Count} items.");
        var dupes = images.Concat(texts).GroupBy(kv => kv.Key).FirstOrDefault(g => g.Count() > 1);
        if (dupes != null) throw new ArgumentException($"Candidate name '{dupes.Key}' appears twice.");
        Images = images; Texts = texts;
    }

    /// <summary>SHA-256 of the pairs file the items came from.</summary>
    public string InputIdentity { get; }
    /// <summary>"i/N" for a partition's features, null for the whole input.</summary>
    public string? Partition { get; }
    /// <summary>Item keys, ordinal order.</summary>
    public IReadOnlyList<string> Keys { get; }
    /// <summary>Image candidates in order: name -> [items, d].</summary>
    public IReadOnlyList<KeyValuePair<string, EmbeddingMatrix>> Images { get; }
    /// <summary>Text candidates in order: name -> [items, d] (mean of each image's caption embeddings).</summary>
    public IReadOnlyList<KeyValuePair<string, EmbeddingMatrix>> Texts { get; }

    /// <summary>The partition key of image <paramref name="imageId"/> of <paramref name="pairs"/> (same as <c>embed --shard</c>).</summary>
    public static string ItemKey(PairsFile pairs, int imageId) => Path.GetRelativePath(pairs.Folder, pairs.Images[imageId]).Replace('\\', '/');

    /// <summary>Encodes the probe images of <paramref name="pairs"/> (optionally one partition) with every candidate.</summary>
    /// <param name="pairs">Pairs file with an image and a caption column.</param>
    /// <param name="layerCandidates">Layer candidates (each layer is one image candidate); may be null.</param>
    /// <param name="imageCandidates">Whole-encoder image candidates; may be empty.</param>
    /// <param name="textCandidates">Text candidates (at least one).</param>
    /// <param name="partition">Only items of this partition; null = all.</param>
    /// <param name="progress">Items done.</param>
    /// <param name="cancellationToken">Checked between chunks of 64 images.</param>
    /// <exception cref="InvalidDataException">No caption column, an image without a non-empty caption, or no items
    /// (the message names the file and line).</exception>
    /// <exception cref="FileNotFoundException">An image is missing (the message names it).</exception>
    public static SelectionFeatures Encode(PairsFile pairs, ImageLayerCandidates? layerCandidates, IReadOnlyList<ImageEncoderCandidate> imageCandidates,
        IReadOnlyList<TextEncoderCandidate> textCandidates, ShardPartition? partition = null, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.CaptionColumn is null) throw new InvalidDataException($"{pairs.Path}: stage-1 selection needs a caption column.");
        if (textCandidates.Count == 0 || (imageCandidates.Count == 0 && layerCandidates is null))
            throw new ArgumentException("Need at least one image and one text candidate.");
        var items = Enumerable.Range(0, pairs.Images.Count)
            .Select(id => (Id: id, Key: ItemKey(pairs, id)))
            .Where(t => partition is null || partition.Contains(t.Key))
            .OrderBy(t => t.Key, StringComparer.Ordinal)
            .ToList();
        if (items.Count == 0) throw new InvalidDataException($"{pairs.Path}: no probe images{(partition is null ? "" : $" in partition {partition}")}.");

        var imageNames = (layerCandidates?.Layers.Select(l => l.Name) ?? []).Concat(imageCandidates.Select(c => c.Name)).ToArray();
        var imageData = imageNames.Select(_ => new List<float>()).ToArray();
        var imageDims = new int[imageNames.Length];
        var textData = textCandidates.Select(_ => new List<float>()).ToArray();
        var textDims = new int[textCandidates.Count];
        // Cheap checks first, in item order, so the first bad item is the one named (as before).
        var paths = new string[items.Count];
        var captionSets = new string[items.Count][];
        for (int i = 0; i < items.Count; i++)
        {
            var (id, key) = items[i];
            var path = pairs.Images[id];
            if (!File.Exists(path))
                throw new FileNotFoundException($"{pairs.Path}, line {pairs.Rows[pairs.CaptionRowsByImage[id][0]].Line}, column '{pairs.ImageColumn}': image file not found: {path}", path);
            var captions = pairs.CaptionRowsByImage[id].Select(r => pairs.Rows[r]).Where(r => !string.IsNullOrWhiteSpace(r.Caption)).Select(r => r.Caption!).ToArray();
            if (captions.Length == 0)
                throw new InvalidDataException($"{pairs.Path}, line {pairs.Rows[pairs.CaptionRowsByImage[id][0]].Line}, column '{pairs.CaptionColumn}': image {key} has no non-empty caption.");
            paths[i] = path;
            captionSets[i] = captions;
        }
        // Images in chunks: each encoder call gets many images, so an ONNX encoder runs its parallel path (decoding on
        // its own thread, several batches inferred at once). Every image still lands in a batch of the encoder's own
        // batch size, so the features are those of one-at-a-time calls with the same encoder.
        int done = 0;
        for (int start = 0; start < items.Count; start += EncodeChunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(EncodeChunk, items.Count - start);
            var chunk = paths.AsSpan(start, n).ToArray();
            int c = 0;
            if (layerCandidates is not null)
            {
                var layers = layerCandidates.Encode(chunk, cancellationToken);
                foreach (var l in layerCandidates.Layers) { imageData[c].AddRange(layers[l.Name].Data); imageDims[c] = layers[l.Name].Columns; c++; }
            }
            foreach (var cand in imageCandidates)
            {
                var (v, d) = ImageVectors(cand, chunk, cancellationToken);
                imageData[c].AddRange(v); imageDims[c] = d; c++;
            }
            for (int i = start; i < start + n; i++)
            {
                for (int t = 0; t < textCandidates.Count; t++)
                {
                    var enc = textCandidates[t].Encoder.EncodeBatch(captionSets[i], false, cancellationToken).Pooled;
                    var mean = EncoderPairRanker.AverageCaptionsPerImage(enc, new int[enc.Rows], 1);
                    textData[t].AddRange(mean.Data); textDims[t] = mean.Columns;
                }
                progress?.Report(++done);
            }
        }
        var keys = items.Select(t => t.Key).ToArray();
        return new SelectionFeatures(pairs.Sha256, partition?.ToString(), keys,
            imageNames.Select((n, i) => KeyValuePair.Create(n, new EmbeddingMatrix(imageData[i].ToArray(), keys.Length, imageDims[i]))).ToArray(),
            textCandidates.Select((c, i) => KeyValuePair.Create(c.Name, new EmbeddingMatrix(textData[i].ToArray(), keys.Length, textDims[i]))).ToArray());
    }

    /// <summary>Images handed to the encoders per call by <see cref="Encode"/>.</summary>
    private const int EncodeChunk = 64;

    /// <summary>Features [paths, d] of one candidate: pooled, or the mean of each image's tokens.</summary>
    private static (float[] Data, int Dim) ImageVectors(ImageEncoderCandidate c, string[] paths, CancellationToken ct)
    {
        if (c.Pooling == ImageCandidateVector.Pooled)
        {
            var pooled = c.Encoder.EncodeBatch(paths, false, ct).Pooled;
            return (pooled.Data, pooled.Columns);
        }
        var tokens = c.Encoder.EncodeBatch(paths, true, ct).Tokens
            ?? throw new InvalidOperationException($"Image candidate '{c.Name}' has no token output: use pooled features.");
        int d = tokens.Dimension;
        var result = new float[paths.Length * d];
        var mean = new double[d];
        for (int i = 0; i < paths.Length; i++)
        {
            int len = tokens.Lengths[i];
            Array.Clear(mean);
            var item = tokens.Item(i);
            for (int t = 0; t < len; t++) for (int j = 0; j < d; j++) mean[j] += item[t * d + j];
            for (int j = 0; j < d; j++) result[i * d + j] = (float)(mean[j] / len);
        }
        return (result, d);
    }

    /// <summary>Combines the features of partitions 0..N-1 of one input into the whole-input features (rows re-ordered
    /// by key): equal, bit for bit, to a one-process <see cref="Encode"/>.</summary>
    /// <exception cref="ArgumentException">Parts missing, repeated, of another input or with other candidates.</exception>
    public static SelectionFeatures Merge(IReadOnlyList<SelectionFeatures> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("No feature parts to merge.");
        var first = parts[0];
        if (first.Partition is null) throw new ArgumentException("The first part is not a partition (written without --shard).");
        int n = ShardPartition.Parse(first.Partition).Count;
        var seen = new Dictionary<int, SelectionFeatures>();
        string Sig(SelectionFeatures f) => string.Join(",", f.Images.Select(kv => $"{kv.Key}:{kv.Value.Columns}")) + "|" + string.Join(",", f.Texts.Select(kv => $"{kv.Key}:{kv.Value.Columns}"));
        foreach (var p in parts)
        {
            if (p.Partition is null) throw new ArgumentException("A part is not a partition (written without --shard).");
            var sp = ShardPartition.Parse(p.Partition);
            if (sp.Count != n) throw new ArgumentException($"Partition {sp} is of {sp.Count} parts, expected {n}.");
            if (p.InputIdentity != first.InputIdentity) throw new ArgumentException($"Partition {sp} comes from another pairs file (SHA-256 {p.InputIdentity[..12]} vs {first.InputIdentity[..12]}).");
            if (Sig(p) != Sig(first)) throw new ArgumentException($"Partition {sp} has other candidates ({Sig(p)}) than partition {first.Partition} ({Sig(first)}).");
            if (!seen.TryAdd(sp.Index, p)) throw new ArgumentException($"Partition {sp} is given twice.");
        }
        var missing = Enumerable.Range(0, n).Where(i => !seen.ContainsKey(i)).ToArray();
        if (missing.Length > 0) throw new ArgumentException($"Missing partition(s) {string.Join(", ", missing.Select(i => $"{i}/{n}"))}.");
        var rows = parts.SelectMany((p, pi) => p.Keys.Select((k, r) => (Key: k, Part: pi, Row: r))).OrderBy(t => t.Key, StringComparer.Ordinal).ToArray();
        for (int i = 1; i < rows.Length; i++)
            if (rows[i].Key == rows[i - 1].Key) throw new ArgumentException($"Item '{rows[i].Key}' appears in two partitions.");
        EmbeddingMatrix Gather(Func<SelectionFeatures, EmbeddingMatrix> pick)
        {
            int d = pick(first).Columns;
            var data = new float[checked(rows.Length * d)];
            for (int i = 0; i < rows.Length; i++) pick(parts[rows[i].Part]).Row(rows[i].Row).CopyTo(data.AsSpan(i * d, d));
            return new EmbeddingMatrix(data, rows.Length, d);
        }
        return new SelectionFeatures(first.InputIdentity, null, rows.Select(r => r.Key).ToArray(),
            first.Images.Select((kv, i) => KeyValuePair.Create(kv.Key, Gather(f => f.Images[i].Value))).ToArray(),
            first.Texts.Select((kv, i) => KeyValuePair.Create(kv.Key, Gather(f => f.Texts[i].Value))).ToArray());
    }

    private sealed record Header(
        [property: JsonPropertyName("input")] string Input,
        [property: JsonPropertyName("partition")] string? Partition,
        [property: JsonPropertyName("keys")] string[] Keys,
        [property: JsonPropertyName("images")] Column[] Images,
        [property: JsonPropertyName("texts")] Column[] Texts);
    private sealed record Column([property: JsonPropertyName("name")] string Name, [property: JsonPropertyName("dim")] int Dim);

    /// <summary>Writes the features (atomically). Binary format, little-endian: magic "MLSF", version int32, header
    /// length int32, UTF-8 JSON header (input identity, partition, keys, candidate names and widths), then each
    /// candidate's float32 matrix [items, d], image candidates first.</summary>
    public void Save(string path)
    {
        var header = JsonSerializer.SerializeToUtf8Bytes(new Header(InputIdentity, Partition, Keys.ToArray(),
            Images.Select(kv => new Column(kv.Key, kv.Value.Columns)).ToArray(), Texts.Select(kv => new Column(kv.Key, kv.Value.Columns)).ToArray()));
        using var ms = new MemoryStream();
        Span<byte> b = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(b[8..], header.Length);
        ms.Write(b);
        ms.Write(header);
        foreach (var kv in Images.Concat(Texts)) ms.Write(MemoryMarshal.AsBytes(kv.Value.Data.AsSpan()));
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    /// <summary>Reads features written by <see cref="Save"/>.</summary>
    /// <exception cref="InvalidDataException">Not a features file, another version, or truncated (the message names the file).</exception>
    public static SelectionFeatures Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 12 || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic)
            throw new InvalidDataException($"{path}: not an MLNet.Align selection features file.");
        int version = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4));
        if (version != Version) throw new InvalidDataException($"{path}: features format version {version}, this library reads {Version}.");
        int hl = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        var h = JsonSerializer.Deserialize<Header>(bytes.AsSpan(12, hl)) ?? throw new InvalidDataException($"{path}: empty header.");
        long at = 12 + hl;
        int n = h.Keys.Length;
        long expected = at + 4L * n * h.Images.Concat(h.Texts).Sum(c => (long)c.Dim);
        if (bytes.Length != expected) throw new InvalidDataException($"{path}: {bytes.Length} bytes, the header describes {expected} (truncated or corrupt).");
        KeyValuePair<string, EmbeddingMatrix> Next(Column c)
        {
            var data = new float[checked(n * c.Dim)];
            MemoryMarshal.Cast<byte, float>(bytes.AsSpan((int)at, data.Length * 4)).CopyTo(data);
            at += data.Length * 4L;
            return KeyValuePair.Create(c.Name, new EmbeddingMatrix(data, n, c.Dim));
        }
        var images = h.Images.Select(Next).ToArray();
        var texts = h.Texts.Select(Next).ToArray();
        return new SelectionFeatures(h.Input, h.Partition, h.Keys, images, texts);
    }

    /// <summary>Ranks the candidate pairs on these features (<see cref="EncoderSelection.Rank"/>).</summary>
    public EncoderSelectionReport Rank(EncoderSelectionOptions? options = null, IProgress<int>? progress = null)
        => EncoderSelection.Rank(Images.ToDictionary(kv => kv.Key, kv => kv.Value), Texts.ToDictionary(kv => kv.Key, kv => kv.Value), options, progress);
}
