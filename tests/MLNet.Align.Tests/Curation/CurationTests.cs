using MLNet.Align.Curation;
using MLNet.Align.Embeddings;
using MLNet.Align.Tests.Embeddings;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.Curation;

public class CurationTests
{
    private static readonly Lazy<EmbeddingStore> s_pool = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), $"mlnet-align-curate-pool-{Environment.ProcessId}");
        return EmbeddingPipeline.Run(PairsFile.Read(FixtureFeatures.PairsFile), dir, FixtureFeatures.ResNet18, FixtureFeatures.MiniLM,
            new EmbeddingPipelineOptions { ShardSize = 16 }).Store;
    });

    private static readonly Concept[] Concepts =
        [new("apple", "fruit with red or yellow or green skin"), new("musical instrument"), new("flag"), new("monkey"), new("mailbox"), new("face")];

    private static ConceptPrototypes TextPrototypes() => ConceptPrototypes.FromText(Concepts, PromptTemplates.Photo, FixtureFeatures.MiniLM, useGlosses: true);

    [Fact]
    public void ConceptListsReadPlainAndTsvAndRejectRepeats()
    {
        var dir = StoreTestData.NewTempDir();
        try
        {
            var plain = Path.Combine(dir, "c.txt");
            File.WriteAllText(plain, "# comment\ncat\tsmall domesticated feline\n\ndog\n");
            Assert.Equal(new[] { new Concept("cat", "small domesticated feline"), new Concept("dog") }, ConceptList.Read(plain));
            var tsv = Path.Combine(dir, "c.tsv");
            File.WriteAllText(tsv, "id\tname\tgloss\nn1\tcat\tfeline\nn2\tdog\t\n");
            Assert.Equal(new[] { new Concept("cat", "feline", "n1"), new Concept("dog", null, "n2") }, ConceptList.Read(tsv));
            File.WriteAllText(plain, "cat\ndog\ncat\n");
            Assert.Contains("line 3: concept 'cat' repeats line 1", Assert.Throws<InvalidDataException>(() => ConceptList.Read(plain)).Message);
            var packaged = ConceptList.Read(Path.Combine(AppContext.BaseDirectory, "concepts", "imagenet-1k.tsv"));
            Assert.Equal(1000, packaged.Count);
            Assert.Equal(new Concept("tench", "freshwater dace-like game fish of Europe and western Asia noted for ability to survive outside water", "n01440764"), packaged[0]);
            Assert.All(packaged, c => Assert.NotNull(c.Gloss));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void AssignmentServesRarestConceptsFirstWithoutSharingAndCapped()
    {
        // Concept 0 is well served (its 3rd best is 0.8), concept 1 is rare (3rd best 0.2): 1 chooses first and takes
        // row 7, which 0 then skips; the cap is 2.
        var c = new ConceptCandidates("pool", "key", 10, null, 3, CurationSide.Caption, "s", ["common", "rare"],
            [[7, 3, 4], [7, 5, 6]], [[0.9f, 0.85f, 0.8f], [0.5f, 0.3f, 0.2f]]);
        var r = ConceptCurator.Select(c, cap: 2);
        Assert.Equal(new long[] { 3, 4 }, r.SelectedRows[0]);
        Assert.Equal(new long[] { 7, 5 }, r.SelectedRows[1]);
        Assert.Equal(1, r.Outcomes[0].Order);
        Assert.Equal(0, r.Outcomes[1].Order);
        Assert.Equal(4, r.Total);
        Assert.Throws<ArgumentException>(() => ConceptCurator.Select(new ConceptCandidates("pool", "key", 10, "0/2", 3, CurationSide.Caption, "s", ["a"], [[1]], [[1f]]), 2));
    }

    [Fact]
    public void StreamingTopKEqualsAFullSortAndFindsTheRightPairs()
    {
        var pool = s_pool.Value;
        Assert.True(pool.Shards.Count >= 3); // streaming over several shards
        var protos = TextPrototypes();
        var full = ConceptCurator.Score(pool, protos, new CurationOptions { PerConcept = (int)pool.Rows });
        var top5 = ConceptCurator.Score(pool, protos, new CurationOptions { PerConcept = 5, Threads = 1 });
        var stored = pool.LoadPooled();
        for (int c = 0; c < Concepts.Length; c++)
        {
            Assert.Equal(full.Rows[c].Take(5), top5.Rows[c]);
            Assert.Equal(full.Scores[c].Take(5), top5.Scores[c]);
            // Scores are cosines of the stored caption with the prototype.
            var row = (int)top5.Rows[c][0];
            Assert.Equal(System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(stored.Text!.Row(row), protos.Text!.Row(c)), top5.Scores[c][0], 4);
        }
        var apples = top5.Rows[0].Take(2).Select(r => stored.Captions[(int)r]).ToArray();
        Assert.All(apples, a => Assert.Contains("apple", a));
        Assert.Contains("monkey", stored.Captions[(int)top5.Rows[3][0]]);
    }

    [Fact]
    public void ShardedCurationMergesToTheSameBytesAsOneProcess()
    {
        var pool = s_pool.Value;
        var protos = TextPrototypes();
        var dir = StoreTestData.NewTempDir();
        try
        {
            var one = ConceptCurator.Score(pool, protos, new CurationOptions { PerConcept = 8 });
            var oneResult = ConceptCurator.Select(one, cap: 3);
            var oneReport = ConceptCurator.WriteSubset(pool, oneResult, Path.Combine(dir, "one.tsv"));

            var parts = new List<ConceptCandidates>();
            for (int i = 0; i < 3; i++)
            {
                var part = ConceptCurator.Score(pool, protos, new CurationOptions { PerConcept = 8, Partition = new ShardPartition(i, 3), Threads = 1 });
                Assert.All(part.Rows, r => Assert.True(r.Length <= 8));
                part.Save(Path.Combine(dir, $"part{i}.bin"));
                parts.Add(ConceptCandidates.Load(Path.Combine(dir, $"part{i}.bin")));
            }
            Assert.True(parts.Sum(p => p.Rows[0].Length) > 8); // each partition kept its own top-K
            var merged = ConceptCandidates.Merge(parts);
            var mergedReport = ConceptCurator.WriteSubset(pool, ConceptCurator.Select(merged, cap: 3), Path.Combine(dir, "merged.tsv"));
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "one.tsv")), File.ReadAllBytes(Path.Combine(dir, "merged.tsv")));
            Assert.Equal(System.Text.Json.JsonSerializer.Serialize(oneReport), System.Text.Json.JsonSerializer.Serialize(mergedReport));

            Assert.Equal(18, oneReport.Selected); // 6 concepts x cap 3
            Assert.Equal(1.0, oneReport.Coverage);
            var lines = File.ReadAllLines(Path.Combine(dir, "one.tsv"));
            Assert.Equal("image\tcaption\tconcept\tscore\tsource\tlabel", lines[0]);
            Assert.Equal(lines.Length - 1, lines.Skip(1).Select(l => l.Split('\t')[0]).Distinct().Count()); // no pair twice
            Assert.True(File.Exists(Path.Combine(dir, lines[1].Split('\t')[0]))); // image paths relative to the subset file
            var reread = PairsFile.Read(Path.Combine(dir, "one.tsv"));
            Assert.Equal(18, reread.Rows.Count);

            Assert.Contains("Missing partition(s) 2/3", Assert.Throws<ArgumentException>(() => ConceptCandidates.Merge(parts.Take(2).ToList())).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void PrototypesFromAnotherEncoderAreRefused()
    {
        var protos = ConceptPrototypes.FromText(Concepts, PromptTemplates.Photo, new HashTextEncoder());
        var ex = Assert.Throws<ArgumentException>(() => ConceptCurator.Score(s_pool.Value, protos));
        Assert.Contains("hash-text-double", ex.Message);
        Assert.Contains("use the pool's text encoder", ex.Message);
        Assert.Throws<ArgumentException>(() => ConceptCurator.Score(s_pool.Value, TextPrototypes(), new CurationOptions { Side = CurationSide.Image }));
    }
}
