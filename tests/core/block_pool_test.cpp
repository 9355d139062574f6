#include <gtest/gtest.h>

#include <vector>

#include "core/block_pool.h"

TEST(BlockPool, BlocksAreKeptForReuseUpToTheBound) {
  core::BlockPool pool(2048, 2);
  void* a = pool.take(2048);
  void* b = pool.take(2048);
  void* c = pool.take(2048);
  EXPECT_EQ(pool.in_use(), 3u);
  pool.give(a, 2048);
  pool.give(b, 2048);
  pool.give(c, 2048);  // over the bound: back to the heap
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.kept(), 2u);
  void* d = pool.take(2048);
  void* e = pool.take(2048);
  EXPECT_TRUE((d == a || d == b) && (e == a || e == b) && d != e);  // the kept ones, not new memory
  EXPECT_EQ(pool.kept(), 0u);
  pool.give(d, 2048);
  pool.give(e, 2048);
}

TEST(BlockPool, OtherSizesAreNotBlocks) {
  core::BlockPool pool(2048, 4);
  void* small = pool.take(100);
  EXPECT_EQ(pool.in_use(), 0u);
  pool.give(small, 100);
  EXPECT_EQ(pool.kept(), 0u);
}

TEST(BlockPool, AllocatorServesAContainerOfOneBlock) {
  core::BlockPool pool(64, 4);
  {
    std::vector<char, core::BlockAllocator<char>> v{core::BlockAllocator<char>(&pool)};
    v.reserve(64);
    EXPECT_EQ(pool.in_use(), 1u);
  }
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.kept(), 1u);
}
