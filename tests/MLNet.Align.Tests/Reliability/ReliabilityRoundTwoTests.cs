using System.Diagnostics;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Similarity;
using MLNet.Align.Tests.Shared;
using MLNet.Align.Tests.ZeroShot;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.Reliability;

/// <summary>
/// Issue 19, library side (the CLI-visible cases are rows of <see cref="BadInputTests.Cases"/>): NaN is never a result,
/// store shards are verified against the manifest, one writer per output, only regular files are read and within a
/// pixel budget, symbolic-link loops are not followed, disposed encoders throw instead of crashing.
/// </summary>
public sealed class ReliabilityRoundTwoTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"rel2-{Guid.NewGuid():N}");

    public ReliabilityRoundTwoTests() => Directory.CreateDirectory(_dir);

    public void Dispose() { try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } }

    private string P(string name) => Path.Combine(_dir, name);

    private static EmbeddingMatrix Identity(int n)
    {
        var m = EmbeddingMatrix.Zeros(n, n);
        for (int i = 0; i < n; i++) m.Row(i)[i] = 1f;
        return m;
    }

    // ---- 1. Finite or fail -------------------------------------------------------------------------------------

    [Fact]
    public void Retrieval_refuses_a_nan_embedding_instead_of_counting_it_a_hit()
    {
        var images = Identity(4);
        var captions = Identity(4);
        images.Row(2)[1] = float.NaN;
        var ex = Assert.Throws<InvalidDataException>(() => RetrievalEvaluator.Evaluate(images, captions, [0, 1, 2, 3]));
        Assert.Contains("Image embeddings: row 2, column 1 is NaN", ex.Message);

        // All-NaN captions: before, every rank was 0 (NaN > x is false) and R@1 was 100%.
        var nanCaptions = new EmbeddingMatrix(Enumerable.Repeat(float.NaN, 16).ToArray(), 4, 4);
        ex = Assert.Throws<InvalidDataException>(() => RetrievalEvaluator.Evaluate(Identity(4), nanCaptions, [0, 1, 2, 3]));
        Assert.Contains("Caption embeddings: row 0, column 0 is NaN", ex.Message);
    }

    [Fact]
    public void Retrieval_refuses_finite_embeddings_whose_similarity_overflows()
    {
        var images = Identity(3);
        images.Row(1)[1] = 3e38f;
        var captions = Identity(3);
        captions.Row(1)[1] = 3e38f;
        var ex = Assert.Throws<InvalidDataException>(() => RetrievalEvaluator.Evaluate(images, captions, [0, 1, 2]));
        Assert.Contains("The similarity of image 1 and caption 1 is +Infinity", ex.Message);
    }

    [Fact]
    public void Zero_shot_refuses_nan_class_embeddings_instead_of_predicting_class_0()
    {
        var classes = Identity(3);
        classes.Row(0)[2] = float.NaN;
        var ex = Assert.Throws<InvalidDataException>(() => ZeroShotEvaluator.Evaluate(Identity(3), classes, [0, 1, 2]));
        Assert.Contains("Class embeddings: row 0, column 2 is NaN", ex.Message);
        var images = Identity(3);
        images.Row(1)[0] = float.NegativeInfinity;
        ex = Assert.Throws<InvalidDataException>(() => ZeroShotEvaluator.Evaluate(images, Identity(3), [0, 1, 2]));
        Assert.Contains("Image embeddings: row 1, column 0 is -Infinity", ex.Message);
    }

    [Fact]
    public void Linear_probe_refuses_nan_features()
    {
        var features = new EmbeddingMatrix([0, 1, 1, 0, 0, 1, 1, float.NaN], 4, 2);
        var ex = Assert.Throws<InvalidDataException>(() => LinearProbe.Fit(features, [0, 1, 0, 1]));
        Assert.Contains("Linear-probe training features: row 3, column 1 is NaN", ex.Message);
    }

    [Fact]
    public void Finite_check_finds_the_first_non_finite_value_past_the_vector_width()
    {
        var values = new float[1037];
        Assert.Equal(-1, FiniteCheck.IndexOfNonFinite(values));
        values[1031] = float.PositiveInfinity;
        values[1036] = float.NaN;
        Assert.Equal(1031, FiniteCheck.IndexOfNonFinite(values));
        values[5] = float.NaN;
        Assert.Equal(5, FiniteCheck.IndexOfNonFinite(values));
    }

    [Fact]
    public void Image_encoder_whose_options_make_nan_is_refused_at_construction()
    {
        var o = PackagedEncoders.ResNet18Options(batchSize: 2);
        o.Std = [1e-40f, 1e-40f, 1e-40f]; // 1/Std = Infinity: every pixel becomes +-Infinity
        var ex = Assert.Throws<InvalidDataException>(() => new OnnxImageEncoder(o));
        Assert.Contains("produced NaN for a white probe image", ex.Message);
    }

    // ---- 2. Verified store ---------------------------------------------------------------------------------------

    private string EmbedStore(string name, int shardSize = 3)
    {
        var pairs = P(name + ".tsv");
        File.WriteAllText(pairs, "image\tcaption\n" + string.Concat(FixtureFeatures.Pairs.Take(6)
            .Select(p => $"{Path.Combine(FixtureFeatures.Dir, "pairs", p.Image)}\t{p.Caption}\n")));
        string dir = P(name);
        EmbeddingPipeline.Run(PairsFile.Read(pairs), dir, FixtureFeatures.ResNet18, FixtureFeatures.MiniLM, new EmbeddingPipelineOptions { ShardSize = shardSize });
        return dir;
    }

    [Fact]
    public void A_shard_edited_after_writing_is_refused_with_its_name_and_a_nan_row_with_shard_and_line()
    {
        string dir = EmbedStore("store");
        var store = EmbeddingStore.Open(dir);
        Assert.Empty(store.VerifyAgainstManifest());
        var rows = store.LoadPooled();
        Assert.Equal(6, rows.Image.Rows);

        BadInputFixture.PoisonFirstShard(dir, rehash: false);
        var tampered = EmbeddingStore.Open(dir); // sizes still match: only the checksum tells
        var problems = tampered.VerifyAgainstManifest();
        Assert.Single(problems);
        Assert.Contains("shard-00000.bin) has SHA-256", problems[0]);
        var ex = Assert.Throws<InvalidDataException>(() => tampered.LoadPooled());
        Assert.Contains("does not match its manifest: Shard 0 (", ex.Message);

        BadInputFixture.PoisonFirstShard(dir, rehash: true); // now consistent with the manifest, but NaN inside
        ex = Assert.Throws<InvalidDataException>(() => EmbeddingStore.Open(dir).LoadPooled());
        Assert.Contains("shard 0 (", ex.Message);
        Assert.Contains("row 0 of the shard (store row 0) (pairs-file line 2, image '", ex.Message);
        Assert.Contains("image embedding column 7 is NaN", ex.Message);
    }

    // ---- 3. One writer per output --------------------------------------------------------------------------------

    [Fact]
    public void A_second_lock_on_an_output_fails_at_once_naming_the_holder_and_is_free_after_release()
    {
        string output = P("out");
        var first = OutputLock.Acquire(output, "mlnet-align train --out out");
        try
        {
            var ex = Assert.Throws<OutputLockedException>(() => OutputLock.Acquire(output, "mlnet-align train --out out --lr 0.1"));
            Assert.Contains($"is being written by another process: PID {Environment.ProcessId} (`mlnet-align train --out out`)", ex.Message);
            Assert.Equal(Environment.ProcessId, ex.Holder!.ProcessId);
            Assert.False(Directory.Exists(output)); // the lock lives beside the output, never inside it
        }
        finally { first.Dispose(); }
        using (var again = OutputLock.Acquire(output)) Assert.Null(again.TakenOverFrom);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir, "*mlnet-align.lock*"));
    }

    [Fact]
    public void A_second_writer_process_fails_at_once_naming_this_process()
    {
        string store = P("store-locked");
        using var held = OutputLock.Acquire(store, "test holder");
        var pairs = P("pairs.tsv");
        File.WriteAllText(pairs, "image\tcaption\n" + string.Concat(FixtureFeatures.Pairs.Take(4)
            .Select(p => $"{Path.Combine(FixtureFeatures.Dir, "pairs", p.Image)}\t{p.Caption}\n")));
        using var proc = Process.Start(CliProcess.StartInfo("embed", "--pairs", pairs, "--out", store))!;
        var stdout = proc.StandardOutput.ReadToEndAsync();
        string stderr = proc.StandardError.ReadToEnd();
        proc.WaitForExit();
        Assert.Equal(1, proc.ExitCode);
        Assert.Contains($"error: Output '{store}' is being written by another process: PID {Environment.ProcessId} (`test holder`)", stderr);
        Assert.DoesNotContain("   at ", stderr);
        Assert.False(Directory.Exists(store), "the refused writer wrote into the locked store");
        _ = stdout.Result;
    }

    [Fact]
    public void A_stale_lock_of_a_dead_process_is_taken_over_and_reported()
    {
        using var dead = Process.Start(new ProcessStartInfo("true"))!;
        dead.WaitForExit();
        string output = P("stale");
        var holder = new OutputLockHolder(dead.Id, "mlnet-align embed --out stale", DateTimeOffset.UtcNow.AddMinutes(-5), Environment.MachineName, DateTimeOffset.UtcNow.AddMinutes(-5));
        File.WriteAllText(P(".stale" + OutputLock.LockSuffix), "");
        File.WriteAllText(P(".stale" + OutputLock.OwnerSuffix), System.Text.Json.JsonSerializer.Serialize(holder));
        var log = new List<string>();
        using (var taken = OutputLock.Acquire(output, "new writer", log.Add))
        {
            Assert.Equal(dead.Id, taken.TakenOverFrom!.ProcessId);
            var line = Assert.Single(log);
            Assert.Contains($"took over the stale lock on '{output}' left by PID {dead.Id} (`mlnet-align embed --out stale`)", line);
            Assert.Contains("which is no longer running", line);
        }
        Assert.False(File.Exists(P(".stale" + OutputLock.OwnerSuffix)));
    }

    [Fact]
    public void A_live_recorded_owner_is_respected_even_when_the_os_lock_is_free()
    {
        // The owner file names this (live) process although nobody holds the OS lock: locking unavailable (e.g. on
        // some network file systems), so the PID check alone must refuse.
        string output = P("nolock");
        using var me = Process.GetCurrentProcess();
        var holder = new OutputLockHolder(Environment.ProcessId, "other writer", new DateTimeOffset(me.StartTime.ToUniversalTime()), Environment.MachineName, DateTimeOffset.UtcNow);
        File.WriteAllText(P(".nolock" + OutputLock.OwnerSuffix), System.Text.Json.JsonSerializer.Serialize(holder));
        var ex = Assert.Throws<OutputLockedException>(() => OutputLock.Acquire(output));
        Assert.Contains("(`other writer`)", ex.Message);
    }

    // ---- 4. Bounded inputs ---------------------------------------------------------------------------------------

    [Fact]
    public void Only_regular_files_are_read_as_images_pairs_or_class_lists()
    {
        string fifo = P("pipe.png");
        BadInputFixture.MakeFifo(fifo);
        Assert.Equal(FileKind.NamedPipe, InputFiles.KindOf(fifo));
        Assert.Equal(FileKind.CharacterDevice, InputFiles.KindOf("/dev/zero"));
        Assert.Equal(FileKind.Directory, InputFiles.KindOf(_dir));
        Assert.Equal(FileKind.Missing, InputFiles.KindOf(P("nothing")));
        Assert.Equal(FileKind.Regular, InputFiles.KindOf(BadInputFixture.SourceImage));

        // None of these may open the pipe: open(2) would block this test forever.
        var ex = Assert.Throws<InvalidDataException>(() => ImageFileDecoder.Decode(fifo));
        Assert.Contains($"Image path '{fifo}' is a named pipe (FIFO)", ex.Message);
        ex = Assert.Throws<InvalidDataException>(() => PairsFile.Read(fifo));
        Assert.Contains("is a named pipe (FIFO)", ex.Message);
        ex = Assert.Throws<InvalidDataException>(() => PairsFile.Read("/dev/zero"));
        Assert.Contains("Pairs file '/dev/zero' is a character device", ex.Message);
        ex = Assert.Throws<InvalidDataException>(() => ClassList.Load(fifo));
        Assert.Contains($"Class list file '{fifo}' is a named pipe (FIFO)", ex.Message);
        ex = Assert.Throws<InvalidDataException>(() => ImageFileDecoder.Decode(_dir));
        Assert.Contains("is a folder, not an image file", ex.Message);
    }

    [Fact]
    public void An_image_over_the_pixel_budget_is_refused_from_its_header_and_the_good_ones_are_still_encoded()
    {
        string bomb = P("bomb.png");
        File.WriteAllBytes(bomb, BadInputFixture.PixelBomb(60000, 60000));
        Assert.Equal(254, new FileInfo(bomb).Length);
        var ex = Assert.Throws<InvalidDataException>(() => ImageFileDecoder.Decode(bomb));
        Assert.Contains("declares 60000 x 60000 pixels (3600 megapixels), over the pixel budget of 100 megapixels", ex.Message);
        Assert.Equal((60000, 60000), ImageFileDecoder.CheckImageFile(bomb, maxPixels: 3_600_000_000));

        // A small budget refuses a real image; the default reads it.
        ex = Assert.Throws<InvalidDataException>(() => ImageFileDecoder.Decode(BadInputFixture.SourceImage, maxPixels: 100));
        Assert.Contains("over the pixel budget of 0 megapixels", ex.Message);
        using (var ok = ImageFileDecoder.Decode(BadInputFixture.SourceImage)) Assert.True(ok.Width > 0);

        // The embedding pipeline skips the bomb and stores the good pairs.
        var pairs = P("pairs.tsv");
        var good = FixtureFeatures.Pairs.Take(3).Select(p => (Path.Combine(FixtureFeatures.Dir, "pairs", p.Image), p.Caption)).ToList();
        File.WriteAllText(pairs, "image\tcaption\n" + string.Concat(good.Append((bomb, "a lie")).Select(r => $"{r.Item1}\t{r.Item2}\n")));
        var result = EmbeddingPipeline.Run(PairsFile.Read(pairs), P("store"), FixtureFeatures.ResNet18, FixtureFeatures.MiniLM, new EmbeddingPipelineOptions());
        Assert.Equal(3, result.Store.Rows);
        var skipped = Assert.Single(result.Store.Manifest.Shards.SelectMany(s => s.Skipped));
        Assert.Contains("pixel budget", skipped.Reason);
    }

    [Fact]
    public void A_prediction_engine_helper_answers_the_good_images_and_refuses_pipes_and_bombs()
    {
        var zs = new ZeroShotFixture();
        string zip = P("clf.zip");
        var ml = new Microsoft.ML.MLContext(0);
        ZeroShotClassifierIO.BuildAndSave(ml, zs.Projector, zs.Classes, zip);
        string fifo = P("pipe.png"), bomb = P("bomb.png");
        BadInputFixture.MakeFifo(fifo);
        File.WriteAllBytes(bomb, BadInputFixture.PixelBomb(60000, 60000));
        var model = ml.Model.Load(zip, out _);
        using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model);
        var outcomes = ZeroShotModel.PredictFiles(engine, [fifo, BadInputFixture.SourceImage, bomb]);
        Assert.Equal(3, outcomes.Count);
        Assert.Contains("named pipe (FIFO)", outcomes[0].Error);
        Assert.Null(outcomes[1].Error);
        Assert.Equal(zs.Classes.ClassNames.Count, outcomes[1].Prediction!.Score.Length);
        Assert.Contains("pixel budget", outcomes[2].Error);
    }

    [Fact]
    public void A_symlink_loop_in_an_image_folder_is_listed_once()
    {
        string root = P("folder");
        Directory.CreateDirectory(Path.Combine(root, "apple", "sub"));
        File.Copy(BadInputFixture.SourceImage, Path.Combine(root, "apple", "a.png"));
        File.Copy(BadInputFixture.SourceImage, Path.Combine(root, "apple", "sub", "b.png"));
        Directory.CreateDirectory(Path.Combine(root, "violin"));
        File.Copy(BadInputFixture.SourceImage, Path.Combine(root, "violin", "c.png"));
        Directory.CreateSymbolicLink(Path.Combine(root, "apple", "sub", "loop"), Path.Combine(root, "apple")); // back up the tree
        BadInputFixture.MakeFifo(Path.Combine(root, "violin", "pipe.png"));
        var ds = ImageFolderDataset.Load(root);
        Assert.Equal(3, ds.Count); // before: followed the loop until the path limit
        Assert.Equal(new[] { "a.png", "b.png", "c.png" }, ds.Items.Select(i => Path.GetFileName(i.Path)).ToArray());
        Assert.Contains(ds.Skipped, s => s.Path.EndsWith("loop", StringComparison.Ordinal) && s.Reason.Contains("symbolic-link loop"));
        Assert.Contains(ds.Skipped, s => s.Path.EndsWith("pipe.png", StringComparison.Ordinal) && s.Reason.Contains("named pipe"));
    }

    [Fact]
    public void A_pairs_path_with_a_leading_space_is_kept_as_written()
    {
        string img = P(" apple.png");
        File.Copy(BadInputFixture.SourceImage, img);
        File.WriteAllText(P("pairs.csv"), "image,caption\n apple.png,An apple.\n");
        var row = Assert.Single(PairsFile.Read(P("pairs.csv")).Rows);
        Assert.Equal(" apple.png", row.RawImagePath);
        Assert.Equal(img, row.ImagePath);
        Assert.True(File.Exists(row.ImagePath));
    }

    // ---- 5. Native safety ----------------------------------------------------------------------------------------

    [Fact]
    public void Disposed_encoders_throw_object_disposed_instead_of_reaching_freed_native_sessions()
    {
        var image = PackagedEncoders.ResNet18(batchSize: 2);
        image.Dispose();
        image.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => image.EncodeBatch([BadInputFixture.SourceImage]));
        using (var bitmap = ImageFileDecoder.Decode(BadInputFixture.SourceImage))
        {
            Assert.Throws<ObjectDisposedException>(() => image.EncodeBitmaps([bitmap]));
            Assert.Throws<ObjectDisposedException>(() => image.PreparePixels(bitmap));
        }
        var text = PackagedEncoders.MiniLM();
        text.Dispose();
        Assert.Throws<ObjectDisposedException>(() => text.EncodeBatch(["an apple"]));
    }

    [Fact]
    public void Selection_sizes_are_bounded_before_any_work()
    {
        var ex = Assert.Throws<ArgumentException>(() => new EncoderSelectionOptions { Bootstrap = 100_000_000 }.Validate());
        Assert.Contains("must be in [0, 100000], got 100000000", ex.Message);
        Assert.Throws<ArgumentException>(() => new EncoderSelectionOptions { SigmaFraction = double.PositiveInfinity }.Validate());
        Assert.Throws<ArgumentException>(() => new EncoderSelectionOptions { KnnK = 0 }.Validate());
        new EncoderSelectionOptions().Validate();
    }

    // ---- 6. Silent garbage ---------------------------------------------------------------------------------------

    [Fact]
    public void Descriptions_that_match_no_class_are_an_error_and_some_unmatched_are_listed()
    {
        var desc = new ClassDescriptions(new Dictionary<string, IReadOnlyList<string>>
        {
            ["apple"] = ["a red fruit."], ["zebra"] = ["a striped horse."],
        });
        Assert.Equal(["zebra"], desc.CheckAgainst(["apple", "violin"], "d.json"));
        var ex = Assert.Throws<ArgumentException>(() => desc.CheckAgainst(["violin"], "d.json"));
        Assert.Contains("d.json: none of its 2 described class(es) ('apple', 'zebra') matches a class of the class list ('violin')", ex.Message);
    }

    [Fact]
    public void A_full_disk_during_a_merge_names_the_shard_and_leaves_no_temp()
    {
        var pairs = P("pairs.tsv");
        File.WriteAllText(pairs, "image\tcaption\n" + string.Concat(FixtureFeatures.Pairs.Take(6)
            .Select(p => $"{Path.Combine(FixtureFeatures.Dir, "pairs", p.Image)}\t{p.Caption}\n")));
        var file = PairsFile.Read(pairs);
        for (int i = 0; i < 2; i++)
            EmbeddingPipeline.Run(file, P($"p{i}"), FixtureFeatures.ResNet18, FixtureFeatures.MiniLM,
                new EmbeddingPipelineOptions { ShardSize = 2, Partition = ShardPartition.Parse($"{i}/2") });
        AtomicFile.DiskFullAfterBytes.Value = new AtomicFile.DiskFullRule("shard-00001.bin", 100);
        IOException ex;
        try { ex = Assert.Throws<IOException>(() => EmbeddingStore.Merge([P("p0"), P("p1")], P("merged"))); }
        finally { AtomicFile.DiskFullAfterBytes.Value = null; }
        Assert.Contains("No space left on device", ex.Message);
        Assert.Contains(Path.Combine(P("merged"), "shard-00001.bin"), ex.Message);
        Assert.Empty(Directory.EnumerateFiles(P("merged"), "*tmp*"));
        Assert.False(File.Exists(Path.Combine(P("merged"), EmbeddingStore.ManifestFileName)));
        // With room again, the same merge completes and matches its manifest.
        var merged = EmbeddingStore.Merge([P("p0"), P("p1")], P("merged"));
        Assert.Empty(merged.VerifyAgainstManifest());
    }
}
